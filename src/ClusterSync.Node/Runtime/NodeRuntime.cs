using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Membership;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.DataPlanes;
using ClusterSync.Transport;
using ClusterSync.Workload;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The live node: the engine, the membership state machine (<see cref="MembershipController"/>, replica committed
/// into an <see cref="InMemoryReplicaSink"/>), the full sync server (TCP, <c>fullSyncPort</c>) and client, and, for
/// <c>dataPlane.source: generator</c>, the thread that drives the workload generator at the configured rate through
/// <see cref="SyncEngine.Submit(ReadOnlySpan{ConnectionEvent})"/> while this member is Active.
/// A hosted service: started and stopped by the Generic Host (SIGTERM, Ctrl-C).
/// </summary>
/// <remarks>
/// Join: the member starts with <see cref="MembershipOptions.StartsSynchronized"/> false. After its Init dead interval
/// the controller moves it to Syncing; if some peer is alive and Standby/Active the node pulls a full sync from the
/// Active (else the best-ranked Standby), retrying until one succeeds, and only then marks itself synchronized (so it
/// reports Standby only after the pull). If no synchronized peer is alive it is the cluster's first member and is
/// synchronized at once. <see cref="SyncEngine.ResyncNeeded"/> schedules a pull from that peer; pulls run one at a
/// time on a worker task, never on the receiver thread.
/// </remarks>
public sealed partial class NodeRuntime : IHostedService, IDisposable
{
    private const int BackpressurePending = 64 * 1024;
    private readonly LoadedNodeConfig _config;
    private readonly ILogger<NodeRuntime> _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ChangeGenerator? _generator;
    private readonly InMemoryReplicaSink _sink = new();
    private readonly FullSyncCounters _fullSyncCounters = new();
    private readonly object _pullLock = new();
    private readonly SortedSet<byte> _pullPeers = [];
    private readonly ILoggerFactory? _loggerFactory;
    private readonly TimeProvider _time;
    private MembershipController? _membership;
    private DataPlaneFeed? _feed;
    private IStreamChannel? _fullSyncChannel;
    private FullSyncServer? _fullSyncServer;
    private FullSyncClient? _fullSyncClient;
    private bool _joinPending;
    private bool _pullRunning;
    private Task _pullWorker = Task.CompletedTask;
    private Thread? _generatorThread;
    private long _submitted;
    private volatile bool _finished;
    private volatile bool _generatorPaused;
    private volatile bool _generatorHeld;
    private double _generatorRate = double.NaN; // NaN: the configured changesPerSecond
    private int _disposed;

    /// <param name="time">The node's clock (full sync, membership, the failover witness, the join planner, adaptive mode).</param>
    public NodeRuntime(LoadedNodeConfig config, SyncEngine engine, TimeProvider time, ILogger<NodeRuntime> logger, ILoggerFactory? loggerFactory = null)
    {
        _time = time;
        _config = config;
        Engine = engine;
        _logger = logger;
        _loggerFactory = loggerFactory;
        var dp = config.Config.DataPlane;
        if (dp.Source == DataPlaneConfig.SourceGenerator)
        {
            _generator = new ChangeGenerator(dp.Generator.Seed, dp.Generator.Connections, dp.Generator.Ipv6Share, config.GeneratorSourceBase);
            _generatorPaused = dp.Generator.Paused;
        }

        Adaptive = AdaptiveNode.Create(config, engine, loggerFactory, time);
    }

    public SyncEngine Engine { get; }

    public LoadedNodeConfig Config => _config;

    public MembershipController? Membership => _membership;

    public InMemoryReplicaSink ReplicaSink => _sink;

    public FullSyncCounters FullSyncCounters => _fullSyncCounters;

    /// <summary>The node's plugins (the classifier plugin in use; set by the node command).</summary>
    public Plugins.NodePlugins? Plugins { get; init; }

    /// <summary>What this member held when it saw the Active die, and when it started serving (demo, bench failover).</summary>
    public FailoverWitness Witness { get; private set; } = null!;

    /// <summary>The data-plane plugin (<c>dataPlane.source: plugin</c>; set by the node command), else null. Owned by the runtime once set.</summary>
    public Plugins.NodeDataPlane? DataPlanePlugin { get; init; }

    /// <summary>Full-sync streams of a plugin transport (<c>cluster.transport</c>), or null for TCP on <c>fullSyncPort</c>. Owned by the runtime once set.</summary>
    public IStreamChannel? FullSyncStreams { get; init; }

    /// <summary>The data-plane feed (<c>dataPlane.source: feed</c>), else null.</summary>
    public DataPlaneFeed? Feed => _feed;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Engine.AdvertisedPriority = (byte)_config.Self.Priority;
        if (_config.Key is { } key)
        {
            try
            {
                _fullSyncChannel = FullSyncStreams ?? new TcpStreamChannel(_config.FullSyncEndPoint, _config.PeerFullSyncEndPoints);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new NodeStartException($"{_config.Path}: cluster.members[{_config.SelfIndex}].fullSyncPort: cannot listen on TCP {_config.FullSyncEndPoint}: {ex.Message}");
            }

            var fsLogger = _loggerFactory?.CreateLogger("ClusterSync.FullSync");
            _fullSyncServer = new FullSyncServer(Engine, _fullSyncChannel, key, _fullSyncCounters, _time, fsLogger)
            {
                CanServe = () => _membership?.State is MemberState.Standby or MemberState.Active,
            };
            _fullSyncClient = new FullSyncClient(Engine, _fullSyncChannel, key, _fullSyncCounters, _time, fsLogger);
            _fullSyncServer.Start();
            Engine.ResyncNeeded += OnResyncNeeded;
        }

        // Before the controller: the witness must see a death first.
        Witness = new FailoverWitness(Engine, _sink, (byte)_config.Self.Priority, _config.Config.Cluster.Preemption, _config.Mode, _time);
        _membership = new MembershipController(Engine, new MembershipOptions
        {
            Mode = _config.Mode,
            Priority = (byte)_config.Self.Priority,
            Preemption = _config.Config.Cluster.Preemption,
            StartsSynchronized = false,
        }, DataPlanePlugin?.WrapSink(_sink) ?? _sink, _time, _loggerFactory?.CreateLogger("ClusterSync.Membership"));
        _membership.StateChanged += OnStateChanged;
        if (_generator is not null && _config.Mode == ClusterMode.LoadSharing)
        {
            RouteByOwnership(_generator, _membership);
        }

        Witness.Attach(_membership);
        if (_config.Config.DataPlane.Source == DataPlaneConfig.SourceFeed)
        {
            _feed = new DataPlaneFeed(Engine, _config.Config.DataPlane.FeedPort, () => _membership?.State == MemberState.Active,
                _loggerFactory?.CreateLogger("ClusterSync.Feed") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            try
            {
                _feed.Start();
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new NodeStartException($"{_config.Path}: dataPlane.feedPort: cannot listen on TCP 127.0.0.1:{_config.Config.DataPlane.FeedPort}: {ex.Message}");
            }
        }
        Engine.Start();
        Log.NodeStarted(_logger, _config.Self.Id, _config.LocalEndPoint.ToString(), _config.PeerMembers.Count, _config.Config.DataPlane.Source);
        if (_generator is not null)
        {
            _generatorThread = new Thread(GeneratorLoop) { IsBackground = true, Name = "cs-generator" };
            _generatorThread.Start();
        }

        DataPlanePlugin?.Start(Engine, () => _membership?.State == MemberState.Active, _stop.Token);

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        _generatorThread?.Join(TimeSpan.FromSeconds(5));
        DataPlanePlugin?.Stop(TimeSpan.FromSeconds(5));
        _feed?.Dispose();
        _membership?.Dispose();
        await StopFullSyncAsync().ConfigureAwait(false);
        Engine.Dispose();
        Adaptive?.Dispose();
        Log.NodeStopped(_logger, _config.Self.Id, _feed?.Submitted ?? DataPlanePlugin?.Submitted ?? Interlocked.Read(ref _submitted));
    }

    private async Task StopFullSyncAsync()
    {
        Engine.ResyncNeeded -= OnResyncNeeded;
        try
        {
            await _pullWorker.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        if (_fullSyncServer is not null)
        {
            await _fullSyncServer.DisposeAsync().ConfigureAwait(false);
            _fullSyncServer = null;
        }

        (_fullSyncChannel as IDisposable)?.Dispose();
        _fullSyncChannel = null;
    }

    public void Dispose()
    {
        // The host disposes this once as a singleton and once as the hosted service.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _generatorThread?.Join(TimeSpan.FromSeconds(5));
        DataPlanePlugin?.Stop(TimeSpan.FromSeconds(5));
        _feed?.Dispose();
        _membership?.Dispose();
        StopFullSyncAsync().GetAwaiter().GetResult();
        Engine.Dispose();
        Adaptive?.Dispose();
        DataPlanePlugin?.Dispose();
        _stop.Dispose();
    }

    // ------------------------------------------------------------------ join and resync

    private void OnStateChanged(MemberState from, MemberState to)
    {
        // Raised on the engine's timer thread inside the controller's lock: only schedule.
        if (to == MemberState.Syncing)
        {
            RequestPull(0);
        }
    }

    private void OnResyncNeeded(byte peer, ulong epoch)
    {
        // Raised on the receiver thread: only schedule.
        Log.ResyncScheduled(_logger, peer, epoch);
        RequestPull(peer);
    }

    /// <summary>Schedules a pull from <paramref name="peer"/> (0: the join pull from the best synchronized peer).</summary>
    private void RequestPull(byte peer)
    {
        lock (_pullLock)
        {
            if (peer == 0)
            {
                _joinPending = true;
            }
            else
            {
                _pullPeers.Add(peer);
            }

            if (_pullRunning || _stop.IsCancellationRequested)
            {
                return;
            }

            _pullRunning = true;
            _pullWorker = Task.Run(PullLoopAsync);
        }
    }

    private async Task PullLoopAsync()
    {
        while (true)
        {
            bool join;
            byte peer = 0;
            lock (_pullLock)
            {
                if (_stop.IsCancellationRequested || (!_joinPending && _pullPeers.Count == 0))
                {
                    _pullRunning = false;
                    return;
                }

                join = _joinPending;
                if (join)
                {
                    _joinPending = false;
                }
                else
                {
                    peer = _pullPeers.Min;
                    _pullPeers.Remove(peer);
                }
            }

            try
            {
                if (join)
                {
                    await JoinAsync().ConfigureAwait(false);
                }
                else if (_fullSyncClient is not null && PeerIndex(peer) is int index and >= 0)
                {
                    await _fullSyncClient.PullAsync(index, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (ObjectDisposedException) when (_stop.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>
    /// The join, as <see cref="JoinPlanner"/> decides: pull from the Active (or, with no Active for a while, the best
    /// Standby) until one pull succeeds; start as first member only when no synchronized peer exists (never on a brief
    /// view: a failed or refused pull is retried).
    /// </summary>
    private async Task JoinAsync()
    {
        var views = new MemberView[_config.PeerMembers.Count];
        var token = _stop.Token;
        var planner = new JoinPlanner(Engine.MemberId, (byte)_config.Self.Priority, Engine.Options.DeadInterval, _time,
            aloneAfter: _config.Config.Cluster.AloneAfter);
        while (!token.IsCancellationRequested)
        {
            int n = Engine.GetPeerViews(views);
            var decision = planner.Next(views.AsSpan(0, n));
            if (decision.Step == JoinStep.FirstMember)
            {
                Log.FirstMember(_logger, Engine.MemberId, decision.Reason);
                _membership!.MarkSynchronized();
                return;
            }

            if (decision.Step == JoinStep.Wait)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _time, token).ConfigureAwait(false);
                continue;
            }

            if (_fullSyncClient is null)
            {
                Log.NoFullSync(_logger, Engine.MemberId, decision.Source);
                _membership!.MarkSynchronized();
                return;
            }

            var result = await _fullSyncClient.PullAsync(PeerIndex(decision.Source), token).ConfigureAwait(false);
            if (result.Succeeded)
            {
                Log.Joined(_logger, Engine.MemberId, decision.Source, decision.SourceState, result.Entries);
                _membership!.MarkSynchronized();
                return;
            }

            Log.JoinPullFailed(_logger, decision.Source, result.Status, result.Error ?? "");
            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, token).ConfigureAwait(false);
        }
    }

    private int PeerIndex(byte member)
    {
        for (int i = 0; i < _config.PeerMembers.Count; i++)
        {
            if (_config.PeerMembers[i].Id == member)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Count and XOR of a per-entry hash of (key, version) over the live connections: equal tables give equal digests.</summary>
    internal static TableDigest Digest(IEnumerable<KeyValuePair<ConnectionKey, ConnectionEntry>> entries) => ToDocument(TableDigestAccumulator.Of(entries));

    private static TableDigest ToDocument(TableDigestAccumulator d)
        => new() { Count = d.Count, Xor = d.Xor.ToString("x16", System.Globalization.CultureInfo.InvariantCulture) };

    /// <summary>What <c>/status</c> reports.</summary>
    public NodeStatus GetStatus()
    {
        var peers = Engine.GetPeerStatus();
        var lags = Engine.GetReplicationLag();
        return new NodeStatus
        {
            MemberId = Engine.MemberId,
            Epoch = Engine.Epoch,
            State = Engine.IsRunning ? "running" : Engine.Failure is not null ? "failed" : "stopped",
            Failure = Engine.Failure,
            TransportFailure = Engine.TransportFailure,
            ReplicationLagFailure = Engine.ReplicationLagFailure,
            UptimeSeconds = Math.Round(Engine.Uptime.TotalSeconds, 3),
            Encrypted = _config.Key is not null,
            SyncAddress = _config.LocalEndPoint.ToString(),
            TableSize = Engine.LiveConnectionCount,
            TableEntries = Engine.TableCount,
            Pending = Engine.PendingCount,
            LastDataSequence = Engine.LastDataSequence,
            DataPlane = new DataPlaneStatus
            {
                Source = _config.Config.DataPlane.Source,
                LiveConnections = _generator?.LiveCount,
                ChangesSubmitted = _feed?.Submitted ?? DataPlanePlugin?.Submitted ?? Interlocked.Read(ref _submitted),
                Finished = _finished || DataPlanePlugin?.Finished == true,
                Paused = _generatorHeld,
                Plugin = DataPlanePlugin?.GetStatus(),
            },
            Membership = new MembershipStatus
            {
                State = (_membership?.State ?? MemberState.Init).ToString(),
                Mode = _config.Config.Cluster.Mode,
                Priority = _config.Self.Priority,
                Preemption = _config.Config.Cluster.Preemption,
                Failovers = _membership?.Failovers ?? 0,
                SplitBrainsResolved = _membership?.SplitBrainsResolved ?? 0,
                LastFailoverMs = Math.Round(_membership?.LastFailoverMilliseconds ?? 0, 1),
                LastCommitted = _membership?.LastCommitted ?? 0,
                Committed = Digest(_sink.Committed),
            },
            FullSync = _fullSyncCounters.ToDictionary(),
            Digest = ToDocument(TableDigestAccumulator.Of(Engine)),
            Peers = peers.Select((p, i) => new PeerStatusDocument
            {
                MemberId = p.MemberId,
                Address = _config.PeerEndPoints[i].ToString(),
                Epoch = p.Epoch,
                LastHeardMs = p.LastHeardAgeMs,
                Alive = p.Live,
                State = p.State,
                MemberState = (p.Live ? (MemberState)p.State : MemberState.Down).ToString(),
                Priority = p.Priority,
                ReceivedThrough = p.ReceivedThrough,
                AckedThrough = p.AckedThrough,
                ReplicationLagDatagrams = lags[i].SequenceLag,
                ReplicationLagMs = lags[i].OldestUnackedAgeMs,
                InSendWindow = lags[i].InWindow,
                Lagging = lags[i].Lagging,
                Links = LinkDocuments(i),
                LinkSwitches = Engine.LinkSwitches(i),
            }).ToList(),
            Counters = Engine.Counters.ToDictionary(),
            Plugins = Plugins?.GetStatus(),
            Exposure = Adaptive?.GetExposure() ?? new ExposureDocument(),
            Adaptive = Adaptive?.GetAdaptive(),
            Telemetry = Adaptive?.GetTelemetry(),
        };
    }

    /// <summary>Adaptive mode and telemetry capture (created at start, before the engine starts).</summary>
    public AdaptiveNode? Adaptive { get; }

    public int? GeneratorLiveConnections => _generator?.LiveCount;

    /// <summary>The generator thread is holding back (after <c>POST /generator/pause</c>): nothing more is submitted until resumed.</summary>
    public bool GeneratorPaused => _generatorHeld;

    /// <summary>Pauses or resumes the generator; <paramref name="changesPerSecond"/> (when given) replaces the configured rate.</summary>
    public void SetGenerator(bool paused, double? changesPerSecond = null)
    {
        if (changesPerSecond is double rate)
        {
            Volatile.Write(ref _generatorRate, rate);
        }

        _generatorPaused = paused;
    }

    private void GeneratorLoop()
    {
        var g = _config.Config.DataPlane.Generator;
        var batch = new ConnectionEvent[256];
        var clock = Stopwatch.StartNew();
        long offered = 0;
        long offeredAtResume = 0;
        bool driving = false;
        double changesPerSecond = g.ChangesPerSecond;
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                // Only an Active member's data plane carries traffic: a Standby waits, and on becoming Active (a
                // failover) continues the population it took over (the replica it committed). In load sharing every
                // member keeps its own population.
                bool active = _membership?.State == MemberState.Active;
                if (!active)
                {
                    driving = false;
                    token.WaitHandle.WaitOne(5);
                    continue;
                }

                if (!driving)
                {
                    driving = true;
                    if (_config.Mode == ClusterMode.HighAvailability)
                    {
                        var committed = _sink.Committed;
                        _generator!.Adopt(committed.Keys);
                        Log.GeneratorDriving(_logger, Engine.MemberId, _generator.LiveCount);
                    }

                    clock.Restart();
                    offeredAtResume = offered;
                }

                if (_config.Mode == ClusterMode.LoadSharing)
                {
                    ApplyOwnershipChanges();
                }

                double rate = Volatile.Read(ref _generatorRate);
                if (_generatorPaused || !double.IsNaN(rate))
                {
                    // Paused, or the rate changed: pace from here at the rate in force when it runs again.
                    while (_generatorPaused && !token.IsCancellationRequested)
                    {
                        _generatorHeld = true;
                        token.WaitHandle.WaitOne(5);
                    }

                    _generatorHeld = false;

                    if (!double.IsNaN(rate = Interlocked.Exchange(ref _generatorRate, double.NaN)))
                    {
                        changesPerSecond = rate;
                    }

                    clock.Restart();
                    offeredAtResume = offered;
                    continue;
                }

                if (g.MaxChanges > 0 && offered >= g.MaxChanges)
                {
                    // Done driving; the thread stays to follow ownership changes (its live set is the data plane's).
                    if (!_finished)
                    {
                        _finished = true;
                        Log.GeneratorFinished(_logger, offered, _generator!.LiveCount);
                    }

                    token.WaitHandle.WaitOne(5);
                    continue;
                }

                long target = offeredAtResume + (long)(changesPerSecond * clock.Elapsed.TotalSeconds);
                if (g.MaxChanges > 0)
                {
                    target = Math.Min(target, g.MaxChanges);
                }

                if (target <= offered || Engine.PendingCount > BackpressurePending)
                {
                    // The data plane delivers a burst about every millisecond, as a kernel event queue would.
                    token.WaitHandle.WaitOne(1);
                    continue;
                }

                int want = (int)Math.Min(batch.Length, target - offered);
                long nowMs = Engine.NowMs();
                int n = 0;
                for (int i = 0; i < want; i++)
                {
                    if (_generator!.Next(ref batch[n], nowMs))
                    {
                        n++;
                    }
                }

                if (n == 0)
                {
                    token.WaitHandle.WaitOne(1); // nothing of ours to drive (load sharing: no connection owned yet)
                    continue;
                }

                Engine.Submit(batch.AsSpan(0, n));
                offered += n;
                Interlocked.Exchange(ref _submitted, offered);
            }
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4001, LogLevel.Information, "Node {Member} running: sync on {Address} (UDP), {Peers} peers, data plane '{Source}'")]
        public static partial void NodeStarted(ILogger logger, int member, string address, int peers, string source);

        [LoggerMessage(4002, LogLevel.Information, "Node {Member} stopped after submitting {Submitted} changes")]
        public static partial void NodeStopped(ILogger logger, int member, long submitted);

        [LoggerMessage(4003, LogLevel.Information, "Generator finished: {Submitted} changes submitted, {Live} live connections")]
        public static partial void GeneratorFinished(ILogger logger, long submitted, int live);

        [LoggerMessage(4004, LogLevel.Information, "Member {Member}: starting synchronized (first member): {Reason}")]
        public static partial void FirstMember(ILogger logger, byte member, string reason);

        [LoggerMessage(4005, LogLevel.Warning, "Member {Member}: insecure cluster, no full sync; joining without pulling from member {Peer}")]
        public static partial void NoFullSync(ILogger logger, byte member, byte peer);

        [LoggerMessage(4006, LogLevel.Information, "Member {Member} joined: full sync from member {Peer} ({State}), {Entries} entries")]
        public static partial void Joined(ILogger logger, byte member, byte peer, MemberState state, long entries);

        [LoggerMessage(4007, LogLevel.Warning, "Join pull from member {Peer} failed ({Status}: {Error}); retrying")]
        public static partial void JoinPullFailed(ILogger logger, byte peer, FullSyncStatus status, string error);

        [LoggerMessage(4008, LogLevel.Information, "Resync needed from member {Peer} (epoch {Epoch}): full sync scheduled")]
        public static partial void ResyncScheduled(ILogger logger, byte peer, ulong epoch);

        [LoggerMessage(4009, LogLevel.Information, "Member {Member} is Active: the generator drives, continuing {Live} taken-over connections")]
        public static partial void GeneratorDriving(ILogger logger, byte member, int live);
    }
}
