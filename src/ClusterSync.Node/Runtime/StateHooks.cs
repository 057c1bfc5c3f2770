using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using ClusterSync.Membership;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Plugins;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The state-change hooks (<c>hooks</c> in the configuration, docs/operations.md): the controller's
/// <see cref="MembershipController.StateChanged"/> (raised on the control tick, inside its lock) only queues a job; one
/// worker task runs the jobs one at a time, in order, so a slow or hung hook never delays a heartbeat or a failover.
/// <list type="bullet">
/// <item>Active: wait until the failover commit into the data plane has ended (a data-plane plugin commits on the
/// thread pool after the tick; the in-process sink committed before the state was published), then add the virtual
/// addresses and announce them, then run <c>onActive</c>.</item>
/// <item>Standby, Maintenance, Down (a clean stop): remove the virtual addresses, run <c>onStandby</c>.</item>
/// <item>Fault (the engine stopped or its transport failed, polled every 250 ms): remove the virtual addresses, run
/// <c>onFault</c>.</item>
/// </list>
/// Every hook gets <see cref="HooksConfig.Timeout"/>; past it its process tree is killed and the timeout logged. Its exit
/// code and duration are logged; a hook that fails, cannot start or hangs never stops the node.
/// </summary>
internal sealed partial class StateHooks : IAsyncDisposable
{
    public const string OnActive = "onActive";
    public const string OnStandby = "onStandby";
    public const string OnFault = "onFault";

    private readonly HooksConfig _config;
    private readonly string _configFile;
    private readonly byte _member;
    private readonly NodeDataPlane? _dataPlane;
    private readonly Func<string?> _fault;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Job> _jobs = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abort = new();
    private MembershipController? _membership;
    private Task _worker = Task.CompletedTask;
    private ITimer? _faultTimer;
    private int _faulted;
    private long _hooksRun;
    private long _hookFailures;
    private long _hookTimeouts;

    private readonly record struct Job(string Event, string State, string Previous, string Reason, long AtUnixMs);

    /// <param name="fault">Polled every 250 ms: non-null (why) once this member can no longer synchronize.</param>
    public StateHooks(HooksConfig config, string configFile, byte member, NodeDataPlane? dataPlane, Func<string?> fault, TimeProvider time, ILogger logger)
    {
        (_config, _configFile, _member, _dataPlane, _fault, _time, _logger) = (config, configFile, member, dataPlane, fault, time, logger);
    }

    /// <summary>Hooks run (started), failed (non-zero exit or could not start) and timed out, for <c>/status</c> and tests.</summary>
    public (long Run, long Failed, long TimedOut) Counts => (Interlocked.Read(ref _hooksRun), Interlocked.Read(ref _hookFailures), Interlocked.Read(ref _hookTimeouts));

    /// <summary>Subscribes to the controller (before the engine's first tick; null: faults only) and starts the worker.</summary>
    public void Start(MembershipController? membership)
    {
        _membership = membership;
        if (membership is not null)
        {
            membership.StateChanged += OnStateChanged;
        }

        _worker = Task.Run(RunAsync);
        _faultTimer = _time.CreateTimer(static s => ((StateHooks)s!).CheckFault(), this, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    /// <summary>
    /// A clean stop: the controller has published Down (queued); lets the queue drain (the virtual addresses removed,
    /// <c>onStandby</c> run) for at most the hook timeout and a margin, then kills what still runs.
    /// </summary>
    public async Task StopAsync()
    {
        _faultTimer?.Dispose();
        _jobs.Writer.TryComplete();
        var bound = _config.Timeout * 2 + TimeSpan.FromSeconds(5);
        try
        {
            await _worker.WaitAsync(bound, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await _abort.CancelAsync().ConfigureAwait(false);
            try
            {
                await _worker.WaitAsync(TimeSpan.FromSeconds(5), _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // a hook that cannot even be killed: the node stops anyway
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (_worker.IsCompleted)
        {
            _abort.Dispose(); // (a worker abandoned on a hook that could not be killed may still read its token)
        }
    }

    private void OnStateChanged(MemberState from, MemberState to)
    {
        // The control tick, inside the controller's lock: only queue. Promoting is a step, not a role: the hooks see
        // the role it was taken from (onActive's "from" is Standby, as before the Promoting state existed).
        if (to == MemberState.Promoting)
        {
            _roleBeforePromoting = from;
            return;
        }

        if (from == MemberState.Promoting)
        {
            from = _roleBeforePromoting;
        }

        string? hook = to switch
        {
            MemberState.Active => OnActive,
            MemberState.Standby when from == MemberState.Standby => null, // an abandoned promotion: it never left Standby's role
            MemberState.Standby or MemberState.Maintenance or MemberState.Down => OnStandby,
            _ => null,
        };
        if (hook is not null)
        {
            _jobs.Writer.TryWrite(new Job(hook, to.ToString(), from.ToString(), _membership?.LastReason ?? "", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        }
    }

    private MemberState _roleBeforePromoting = MemberState.Standby;

    private void CheckFault()
    {
        if (_fault() is not { } why || Interlocked.Exchange(ref _faulted, 1) != 0)
        {
            return;
        }

        _jobs.Writer.TryWrite(new Job(OnFault, "Fault", _membership?.State.ToString() ?? "", why, _time.GetUtcNow().ToUnixTimeMilliseconds()));
    }

    private async Task RunAsync()
    {
        await RemoveAddressesAsync("start: this member holds no virtual address until it is Active").ConfigureAwait(false);
        await foreach (var job in _jobs.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await RunJobAsync(job).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Interlocked.Increment(ref _hookFailures);
                Log.JobFailed(_logger, job.Event, job.State, ex);
            }
        }
    }

    private async Task RunJobAsync(Job job)
    {
        await _announcing.ConfigureAwait(false); // the last taking of the addresses has been announced
        long commitEnded = 0;
        if (job.Event == OnActive)
        {
            // The failover commit into the data plane ends before traffic is moved here (a plugin commits after the tick).
            if (_dataPlane is not null)
            {
                await Task.Run(() => _dataPlane.WaitForCommitEnd(_abort.Token)).ConfigureAwait(false);
                commitEnded = _dataPlane.CommitEndedUnixMs;
            }
            else
            {
                commitEnded = job.AtUnixMs; // the in-process sink committed before the state was published
            }

            Log.CommitEnded(_logger, _member, commitEnded, job.AtUnixMs);
            await AddAddressesAsync(commitEnded).ConfigureAwait(false);
        }
        else
        {
            await RemoveAddressesAsync($"{job.State}: {job.Reason}").ConfigureAwait(false);
        }

        var command = job.Event switch
        {
            OnActive => _config.OnActive,
            OnStandby => _config.OnStandby,
            _ => _config.OnFault,
        };
        if (command.Count > 0)
        {
            await RunHookAsync(job, command, commitEnded).ConfigureAwait(false);
        }
    }

    private async Task RunHookAsync(Job job, IReadOnlyList<string> command, long commitEnded)
    {
        string file = HooksConfig.ResolveExecutable(_configFile, command[0]);
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        string member = _member.ToString(CultureInfo.InvariantCulture);
        for (int i = 1; i < command.Count; i++)
        {
            psi.ArgumentList.Add(command[i]
                .Replace("{state}", job.State, StringComparison.Ordinal)
                .Replace("{previous}", job.Previous, StringComparison.Ordinal)
                .Replace("{reason}", job.Reason, StringComparison.Ordinal)
                .Replace("{member}", member, StringComparison.Ordinal));
        }

        psi.Environment["CLUSTERSYNC_EVENT"] = job.Event;
        psi.Environment["CLUSTERSYNC_STATE"] = job.State;
        psi.Environment["CLUSTERSYNC_PREVIOUS_STATE"] = job.Previous;
        psi.Environment["CLUSTERSYNC_REASON"] = job.Reason;
        psi.Environment["CLUSTERSYNC_MEMBER"] = member;
        psi.Environment["CLUSTERSYNC_CHANGED_UNIX_MS"] = job.AtUnixMs.ToString(CultureInfo.InvariantCulture);
        if (job.Event == OnActive)
        {
            psi.Environment["CLUSTERSYNC_COMMIT_ENDED_UNIX_MS"] = commitEnded.ToString(CultureInfo.InvariantCulture);
        }

        var (exit, output, ms, timedOut) = await RunProcessAsync(psi, _config.Timeout, job.Event).ConfigureAwait(false);
        Interlocked.Increment(ref _hooksRun);
        if (timedOut)
        {
            Interlocked.Increment(ref _hookTimeouts);
            Interlocked.Increment(ref _hookFailures);
            Log.HookTimedOut(_logger, job.Event, job.State, file, _config.Timeout.TotalSeconds, ms, output);
        }
        else if (exit is null)
        {
            Interlocked.Increment(ref _hookFailures);
            Log.HookNotStarted(_logger, job.Event, job.State, file, output);
        }
        else if (exit != 0)
        {
            Interlocked.Increment(ref _hookFailures);
            Log.HookFailed(_logger, job.Event, job.State, file, exit.Value, ms, output);
        }
        else
        {
            Log.HookSucceeded(_logger, job.Event, job.State, file, ms, output);
        }
    }

    /// <summary>
    /// Runs one process with a bound: its exit code (null when it could not start), the tail of its output, how long it
    /// ran, and whether it was killed (with every process it started) at the bound or at shutdown.
    /// </summary>
    private async Task<(int? Exit, string Output, double Milliseconds, bool TimedOut)> RunProcessAsync(ProcessStartInfo psi, TimeSpan timeout, string what)
    {
        long started = _time.GetTimestamp();
        var output = new OutputTail();
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.Exited += (_, _) => exited.TrySetResult();
        process.OutputDataReceived += (_, e) => output.Add(e.Data);
        process.ErrorDataReceived += (_, e) => output.Add(e.Data);
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            return (null, ex.Message, 0, false);
        }

        Log.ProcessStarted(_logger, what, psi.FileName, process.Id, _time.GetUtcNow().ToUnixTimeMilliseconds());
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        using var bound = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, _abort.Token);
        try
        {
            // The exit, not the end of its output: a hook may leave a daemon behind that keeps the pipes open.
            await exited.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            double ms = _time.GetElapsedTime(started).TotalMilliseconds;
            await output.WaitClosedAsync(TimeSpan.FromMilliseconds(500), _time).ConfigureAwait(false);
            return (process.ExitCode, output.Text, ms, false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // it exited meanwhile
            }

            try
            {
                await exited.Task.WaitAsync(TimeSpan.FromSeconds(5), _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            return (null, output.Text, _time.GetElapsedTime(started).TotalMilliseconds, true);
        }
    }

    /// <summary>The last 2,000 characters a hook printed (stdout and stderr together), for the log.</summary>
    private sealed class OutputTail
    {
        private const int Max = 2000;
        private readonly StringBuilder _text = new();
        private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _open = 2;

        public void Add(string? line)
        {
            if (line is null)
            {
                if (Interlocked.Decrement(ref _open) == 0)
                {
                    _closed.TrySetResult();
                }

                return;
            }

            lock (_text)
            {
                _text.Append(line).Append('\n');
                if (_text.Length > Max)
                {
                    _text.Remove(0, _text.Length - Max);
                }
            }
        }

        /// <summary>Waits (bounded) until both streams ended, so the log holds everything the hook printed.</summary>
        public async Task WaitClosedAsync(TimeSpan bound, TimeProvider time)
        {
            try
            {
                await _closed.Task.WaitAsync(bound, time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }

        public string Text
        {
            get
            {
                lock (_text)
                {
                    return _text.ToString().TrimEnd('\n');
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4060, LogLevel.Information, "Member {Member}: data-plane commit ended at {CommitEndedUnixMs} (Unix ms; Active since {ActiveUnixMs}); moving traffic here")]
        public static partial void CommitEnded(ILogger logger, byte member, long commitEndedUnixMs, long activeUnixMs);

        [LoggerMessage(4061, LogLevel.Information, "Hook {Hook}: started {File} (pid {Pid}) at {StartedUnixMs} (Unix ms)")]
        public static partial void ProcessStarted(ILogger logger, string hook, string file, int pid, long startedUnixMs);

        [LoggerMessage(4062, LogLevel.Information, "Hook {Hook} ({State}): {File} exited with code 0 after {Milliseconds:F0} ms{Output}")]
        private static partial void HookSucceededCore(ILogger logger, string hook, string state, string file, double milliseconds, string output);

        [LoggerMessage(4063, LogLevel.Warning, "Hook {Hook} ({State}): {File} exited with code {ExitCode} after {Milliseconds:F0} ms; the node carries on{Output}")]
        private static partial void HookFailedCore(ILogger logger, string hook, string state, string file, int exitCode, double milliseconds, string output);

        [LoggerMessage(4064, LogLevel.Error, "Hook {Hook} ({State}): {File} timed out after {Timeout:0.###} s (hooks.timeout) and was killed with what it started, after {Milliseconds:F0} ms; the node carries on{Output}")]
        private static partial void HookTimedOutCore(ILogger logger, string hook, string state, string file, double timeout, double milliseconds, string output);

        [LoggerMessage(4065, LogLevel.Error, "Hook {Hook} ({State}): cannot start {File}: {Error}; the node carries on")]
        public static partial void HookNotStarted(ILogger logger, string hook, string state, string file, string error);

        [LoggerMessage(4066, LogLevel.Error, "Hook job {Hook} ({State}) failed; the node carries on")]
        public static partial void JobFailed(ILogger logger, string hook, string state, Exception exception);

        public static void HookSucceeded(ILogger logger, string hook, string state, string file, double ms, string output)
            => HookSucceededCore(logger, hook, state, file, ms, Tail(output));

        public static void HookFailed(ILogger logger, string hook, string state, string file, int exit, double ms, string output)
            => HookFailedCore(logger, hook, state, file, exit, ms, Tail(output));

        public static void HookTimedOut(ILogger logger, string hook, string state, string file, double timeout, double ms, string output)
            => HookTimedOutCore(logger, hook, state, file, timeout, ms, Tail(output));

        private static string Tail(string output) => output.Length == 0 ? "" : $"; output: {output}";
    }
}
