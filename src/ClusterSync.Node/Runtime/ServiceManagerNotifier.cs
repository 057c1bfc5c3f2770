using System.Globalization;
using ClusterSync.Membership;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// Tells a service manager (systemd, <c>Type=notify</c>; the socket in <c>NOTIFY_SOCKET</c>) how the member is, through
/// <see cref="ISystemdNotifier"/> (Microsoft.Extensions.Hosting.Systemd's sd_notify client):
/// <list type="bullet">
/// <item><c>READY=1</c> once, when the member first becomes Standby or Active (a member that is still joining — Init,
/// Syncing — is not ready: a unit ordered after this one waits for its full sync);</item>
/// <item><c>STATUS=member N: STATE</c> at every state change (<c>systemctl status</c> shows it);</item>
/// <item><c>WATCHDOG=1</c> from the engine's control tick, every half of <c>WATCHDOG_USEC</c> (the unit's
/// <c>WatchdogSec=</c>): a control tick that stops (a hung node) stops the pings and systemd restarts the node;</item>
/// <item><c>STOPPING=1</c> when the host stops the node.</item>
/// </list>
/// Created only when <c>NOTIFY_SOCKET</c> is set (<see cref="Create"/>); a failed send is logged once and never stops the node.
/// </summary>
internal sealed partial class ServiceManagerNotifier : IHostedService
{
    private readonly NodeRuntime _node;
    private readonly ISystemdNotifier _notifier;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _watchdogEvery;
    private long _lastWatchdog;
    private int _ready;
    private int _failed;
    private MembershipController? _membership;

    internal ServiceManagerNotifier(NodeRuntime node, ISystemdNotifier notifier, TimeSpan watchdogEvery, TimeProvider time, ILogger logger)
    {
        (_node, _notifier, _watchdogEvery, _time, _logger) = (node, notifier, watchdogEvery, time, logger);
    }

    /// <summary>The watchdog ping interval: half of <c>WATCHDOG_USEC</c> (systemd's advice), or zero when there is no watchdog.</summary>
    public TimeSpan WatchdogEvery => _watchdogEvery;

    /// <summary>A service manager listens: <c>NOTIFY_SOCKET</c> is set.</summary>
    public static bool Listening => new SystemdNotifier().IsEnabled;

    /// <summary>The notifier for <c>NOTIFY_SOCKET</c> (check <see cref="Listening"/> first), its watchdog from <c>WATCHDOG_USEC</c>.</summary>
    public static ServiceManagerNotifier Create(NodeRuntime node, TimeProvider time, ILogger logger)
    {
        var notifier = new SystemdNotifier();

        // WATCHDOG_PID, when set, names the process that must ping (ours when systemd started us directly).
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        bool ours = string.IsNullOrEmpty(pid) || pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        var every = ours && long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out var us) && us > 0
            ? TimeSpan.FromMicroseconds(us / 2.0)
            : TimeSpan.Zero;
        return new ServiceManagerNotifier(node, notifier, every, time, logger);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Started after NodeRuntime (registered after it): the controller exists and is still Init.
        _membership = _node.Membership;
        if (_membership is not null)
        {
            _membership.StateChanged += OnStateChanged;
        }

        if (_watchdogEvery > TimeSpan.Zero)
        {
            _lastWatchdog = _time.GetTimestamp();
            _node.Engine.Ticked += OnTick;
        }

        Log.Notifying(_logger, _watchdogEvery.TotalMilliseconds);
        var state = _membership?.State ?? MemberState.Init;
        Send(StatusLine(state) + (TakeReady(state) ? "\nREADY=1" : ""));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _node.Engine.Ticked -= OnTick;
        if (_membership is not null)
        {
            _membership.StateChanged -= OnStateChanged;
        }

        Send($"STOPPING=1\nSTATUS=member {_node.Model.Self.Id}: stopping");
        return Task.CompletedTask;
    }

    // On the control tick, inside the controller's lock: only schedule (one datagram on the thread pool).
    private void OnStateChanged(MemberState from, MemberState to)
    {
        var message = StatusLine(to) + (TakeReady(to) ? "\nREADY=1" : "");
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Self.Send(s.Message), (Self: this, Message: message), preferLocal: false);
    }

    // On the control tick itself: a tick that stops stops the pings (that is the point of the watchdog).
    private void OnTick()
    {
        long now = _time.GetTimestamp();
        if (_time.GetElapsedTime(Volatile.Read(ref _lastWatchdog), now) < _watchdogEvery)
        {
            return;
        }

        Volatile.Write(ref _lastWatchdog, now);
        Send("WATCHDOG=1");
    }

    private bool TakeReady(MemberState state)
        => state is MemberState.Standby or MemberState.Active && Interlocked.Exchange(ref _ready, 1) == 0;

    private string StatusLine(MemberState state)
        => string.Create(CultureInfo.InvariantCulture, $"STATUS=member {_node.Model.Self.Id}: {state}");

    private void Send(string message)
    {
        try
        {
            _notifier.Notify(new ServiceState(message));
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or ObjectDisposedException)
        {
            if (Interlocked.Exchange(ref _failed, 1) == 0)
            {
                Log.SendFailed(_logger, ex.Message);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4080, LogLevel.Information, "Service manager notifications on (NOTIFY_SOCKET): READY=1 at Standby or Active, STATUS= at each state change, watchdog ping every {WatchdogMs} ms (0: no WatchdogSec)")]
        public static partial void Notifying(ILogger logger, double watchdogMs);

        [LoggerMessage(4081, LogLevel.Warning, "Service manager notification failed (NOTIFY_SOCKET): {Error}; further failures are not logged")]
        public static partial void SendFailed(ILogger logger, string error);
    }
}
