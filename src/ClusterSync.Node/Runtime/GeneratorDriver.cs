using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Membership;
using ClusterSync.Node.Configuration;
using ClusterSync.Workload;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The built-in data plane (<c>dataPlane.source: generator</c>): the <c>cs-generator</c> thread drives the workload
/// generator at <c>changesPerSecond</c> through <see cref="SyncEngine.Submit(ReadOnlySpan{ConnectionEvent})"/> while this
/// member is Active, pauses and changes rate on request (<c>POST /generator</c>), and in load sharing opens only the
/// connections this member owns (as if the upstream switch's symmetric hash delivered them here): when the owner set
/// changes it drops the connections that moved away and drives the ones this member took over.
/// </summary>
public sealed class GeneratorDriver
{
    private const int BackpressurePending = 64 * 1024;
    private readonly GeneratorConfig _config;
    private readonly ClusterMode _mode;
    private readonly SyncEngine _engine;
    private readonly ChangeGenerator _generator;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<(byte[] Owners, IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> Gained)> _ownershipChanges = new();
    private MembershipController? _membership;
    private InMemoryReplicaSink? _committed;
    private Thread? _thread;
    private long _submitted;
    private volatile bool _finished;
    private volatile bool _paused;
    private volatile bool _held;
    private double _rate = double.NaN; // NaN: the rate in force

    internal GeneratorDriver(GeneratorConfig config, uint sourceBase, ClusterMode mode, SyncEngine engine, ILogger logger)
    {
        _config = config;
        _mode = mode;
        _engine = engine;
        _logger = logger;
        _generator = new ChangeGenerator(config.Seed, config.Connections, config.Ipv6Share, sourceBase);
        _paused = config.Paused;
    }

    public long Submitted => Interlocked.Read(ref _submitted);

    /// <summary>Reached <c>maxChanges</c>.</summary>
    public bool Finished => _finished;

    /// <summary>The thread is holding back (after <c>POST /generator/pause</c>): nothing more is submitted until resumed.</summary>
    public bool Held => _held;

    public int LiveConnections => _generator.LiveCount;

    /// <summary>Pauses or resumes; <paramref name="changesPerSecond"/> (when given) replaces the rate.</summary>
    public void Set(bool paused, double? changesPerSecond)
    {
        if (changesPerSecond is double rate)
        {
            Volatile.Write(ref _rate, rate);
        }

        _paused = paused;
    }

    /// <summary>
    /// Follows <paramref name="membership"/> (before the engine starts, so no ownership change is missed): it submits only
    /// while Active, continuing what <paramref name="committed"/> took over.
    /// </summary>
    internal void Attach(MembershipController membership, InMemoryReplicaSink committed)
    {
        _membership = membership;
        _committed = committed;
        if (_mode == ClusterMode.LoadSharing)
        {
            byte self = _engine.MemberId;
            _generator.Accept = key => membership.OwnerOf(key) == self;
            membership.OwnershipChanged += (owners, gained) => _ownershipChanges.Enqueue((owners, gained));
        }
    }

    /// <summary>Starts the <c>cs-generator</c> thread (after <see cref="Attach"/>).</summary>
    internal void Start(CancellationToken stop)
    {
        _thread = new Thread(() => Run(stop)) { IsBackground = true, Name = "cs-generator" };
        _thread.Start();
    }

    /// <summary>Waits for the thread (after the stop token was cancelled), bounded.</summary>
    internal void Join(TimeSpan timeout) => _thread?.Join(timeout);

    private void Run(CancellationToken token)
    {
        var batch = new ConnectionEvent[256];
        var clock = Stopwatch.StartNew();
        long offered = 0;
        long offeredAtResume = 0;
        bool driving = false;
        double changesPerSecond = _config.ChangesPerSecond;
        try
        {
            while (!token.IsCancellationRequested)
            {
                // Only an Active member's data plane carries traffic: a Standby waits, and on becoming Active (a
                // failover) continues the population it took over (the replica it committed). In load sharing every
                // member keeps its own population.
                if (_membership!.State != MemberState.Active)
                {
                    driving = false;
                    token.WaitHandle.WaitOne(5);
                    continue;
                }

                if (!_membership.Serving)
                {
                    token.WaitHandle.WaitOne(5); // handing the Active role over (admin down/failover): hold, keep the population
                    continue;
                }

                if (!driving)
                {
                    driving = true;
                    if (_mode == ClusterMode.HighAvailability)
                    {
                        _generator.Adopt(_committed!.Committed.Keys);
                        NodeRuntime.Log.GeneratorDriving(_logger, _engine.MemberId, _generator.LiveCount);
                    }

                    clock.Restart();
                    offeredAtResume = offered;
                }

                if (_mode == ClusterMode.LoadSharing)
                {
                    ApplyOwnershipChanges();
                }

                double rate = Volatile.Read(ref _rate);
                if (_paused || !double.IsNaN(rate))
                {
                    // Paused, or the rate changed: pace from here at the rate in force when it runs again.
                    while (_paused && !token.IsCancellationRequested)
                    {
                        _held = true;
                        token.WaitHandle.WaitOne(5);
                    }

                    _held = false;
                    if (!double.IsNaN(rate = Interlocked.Exchange(ref _rate, double.NaN)))
                    {
                        changesPerSecond = rate;
                    }

                    clock.Restart();
                    offeredAtResume = offered;
                    continue;
                }

                if (_config.MaxChanges > 0 && offered >= _config.MaxChanges)
                {
                    // Done driving; the thread stays to follow ownership changes (its live set is the data plane's).
                    if (!_finished)
                    {
                        _finished = true;
                        NodeRuntime.Log.GeneratorFinished(_logger, offered, _generator.LiveCount);
                    }

                    token.WaitHandle.WaitOne(5);
                    continue;
                }

                long target = offeredAtResume + (long)(changesPerSecond * clock.Elapsed.TotalSeconds);
                if (_config.MaxChanges > 0)
                {
                    target = Math.Min(target, _config.MaxChanges);
                }

                if (target <= offered || _engine.PendingCount > BackpressurePending)
                {
                    // The data plane delivers a burst about every millisecond, as a kernel event queue would.
                    token.WaitHandle.WaitOne(1);
                    continue;
                }

                int want = (int)Math.Min(batch.Length, target - offered);
                long nowMs = _engine.NowMs();
                int n = 0;
                for (int i = 0; i < want; i++)
                {
                    if (_generator.Next(ref batch[n], nowMs))
                    {
                        n++;
                    }
                }

                if (n == 0)
                {
                    token.WaitHandle.WaitOne(1); // nothing of ours to drive (load sharing: no connection owned yet)
                    continue;
                }

                _engine.Submit(batch.AsSpan(0, n));
                offered += n;
                Interlocked.Exchange(ref _submitted, offered);
            }
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
    }

    /// <summary>On the generator thread: applies owner-set changes to the generator's live set.</summary>
    private void ApplyOwnershipChanges()
    {
        byte self = _engine.MemberId;
        while (_ownershipChanges.TryDequeue(out var change))
        {
            var owners = change.Owners;
            int dropped = _generator.Retain(key => Ownership.OwnerOf(key, owners) == self);
            int added = _generator.AddLive(change.Gained.Select(c => c.Key));
            NodeRuntime.Log.Rerouted(_logger, self, string.Join(',', owners), dropped, added, _generator.LiveCount);
        }
    }
}
