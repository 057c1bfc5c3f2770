using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Membership;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.DataPlanes;
using ClusterSync.Node.Plugins;
using ClusterSync.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The live node, a hosted service started and stopped by the Generic Host (SIGTERM, Ctrl-C): it owns the parts
/// <see cref="NodeHost"/> composed (the engine, the classifier binding, adaptive mode, the data plane) and, at start,
/// creates what binds or runs: the full sync server (TCP, <c>fullSyncPort</c>) and client, the failover witness, the
/// membership state machine (<see cref="MembershipController"/>, replica committed into an
/// <see cref="InMemoryReplicaSink"/>) and the data-plane source (generator, feed or plugin), which submits only while
/// this member is Active. Join and resync pulls: <c>NodeRuntime.Join.cs</c>; <c>/status</c>: <c>NodeRuntime.Status.cs</c>.
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
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly CancellationTokenSource _stop = new();
    private readonly InMemoryReplicaSink _sink = new();
    private readonly FullSyncCounters _fullSyncCounters = new();
    private readonly TimeProvider _time;
    private readonly GcPauseMonitor _gc;
    private readonly IStreamChannel? _fullSyncStreams;
    private MembershipController? _membership;
    private StateHooks? _hooks;
    private DataPlaneFeed? _feed;
    private IStreamChannel? _fullSyncChannel;
    private FullSyncServer? _fullSyncServer;
    private FullSyncClient? _fullSyncClient;
    private readonly object _shutdownLock = new();
    private Task? _shutdown;
    private int _disposed;

    /// <param name="fullSyncStreams">Full-sync streams of a plugin transport (<c>cluster.transport</c>), or null for TCP on <c>fullSyncPort</c>.</param>
    /// <param name="time">The node's clock (full sync, membership, the failover witness, the join planner).</param>
    internal NodeRuntime(NodeModel model, SyncEngine engine, NodePlugins plugins, AdaptiveNode adaptive, NodeDataPlane? dataPlane,
        GeneratorDriver? generator, IStreamChannel? fullSyncStreams, TimeProvider time, ILoggerFactory loggerFactory)
    {
        (Model, Engine, Plugins, Adaptive, DataPlanePlugin, Generator) = (model, engine, plugins, adaptive, dataPlane, generator);
        (_fullSyncStreams, _time, _loggerFactory) = (fullSyncStreams, time, loggerFactory);
        _logger = loggerFactory.CreateLogger<NodeRuntime>();
        _gc = new GcPauseMonitor(time);
    }

    /// <summary>This process's garbage-collector pauses (<c>/status</c> <c>gc</c>, <c>/failover</c>, <c>/metrics</c>).</summary>
    public GcStatus GetGcStatus() => _gc.GetStatus();

    public SyncEngine Engine { get; }

    public NodeModel Model { get; }

    public MembershipController? Membership => _membership;

    public InMemoryReplicaSink ReplicaSink => _sink;

    public FullSyncCounters FullSyncCounters => _fullSyncCounters;

    /// <summary>The classifier plugin in use.</summary>
    public NodePlugins Plugins { get; }

    /// <summary>Adaptive mode and telemetry capture.</summary>
    public AdaptiveNode Adaptive { get; }

    /// <summary>What this member held when it saw the Active die, and when it started serving (demo, bench failover).</summary>
    public FailoverWitness Witness { get; private set; } = null!;

    /// <summary>The data-plane plugin (<c>dataPlane.source: plugin</c>), else null.</summary>
    public NodeDataPlane? DataPlanePlugin { get; }

    /// <summary>The built-in generator (<c>dataPlane.source: generator</c>), else null.</summary>
    public GeneratorDriver? Generator { get; }

    /// <summary>The data-plane feed (<c>dataPlane.source: feed</c>), else null.</summary>
    public DataPlaneFeed? Feed => _feed;

    /// <summary>Changes the data-plane source submitted to the engine.</summary>
    public long Submitted => _feed?.Submitted ?? DataPlanePlugin?.Submitted ?? Generator?.Submitted ?? 0;

    public int? GeneratorLiveConnections => Generator?.LiveConnections;

    /// <summary>The generator thread is holding back (after <c>POST /generator/pause</c>): nothing more is submitted until resumed.</summary>
    public bool GeneratorPaused => Generator?.Held == true;

    /// <summary>Pauses or resumes the generator; <paramref name="changesPerSecond"/> (when given) replaces the configured rate.</summary>
    public void SetGenerator(bool paused, double? changesPerSecond = null) => Generator?.Set(paused, changesPerSecond);

    /// <summary>Active and not handing the role over (<c>admin down</c>/<c>failover</c>): the data-plane source may submit.</summary>
    private bool IsActive => _membership?.Serving == true;

    /// <summary>The state hooks and virtual addresses (<c>hooks</c>), or null when none are configured.</summary>
    internal StateHooks? Hooks => _hooks;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Engine.AdvertisedPriority = (byte)Model.Self.Priority;
        if (Model.Key is { } key)
        {
            try
            {
                _fullSyncChannel = _fullSyncStreams ?? new TcpStreamChannel(Model.FullSyncEndPoint, Model.PeerFullSyncEndPoints);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new NodeStartException($"{Model.Path}: cluster.members[{Model.SelfIndex}].fullSyncPort: cannot listen on TCP {Model.FullSyncEndPoint}: {ex.Message}");
            }

            var fsLogger = _loggerFactory.CreateLogger("ClusterSync.FullSync");
            _fullSyncServer = new FullSyncServer(Engine, _fullSyncChannel, key, _fullSyncCounters, _time, fsLogger)
            {
                CanServe = () => _membership?.State is MemberState.Standby or MemberState.Active or MemberState.Promoting,
            };
            _fullSyncClient = new FullSyncClient(Engine, _fullSyncChannel, key, _fullSyncCounters, _time, fsLogger);
            _fullSyncServer.Start();
            Engine.ResyncNeeded += OnResyncNeeded;
        }

        // Before the controller: the witness must see a death first.
        Witness = new FailoverWitness(Engine, _sink, (byte)Model.Self.Priority, Model.Config.Cluster.Preemption, Model.Mode, _time);
        _membership = new MembershipController(Engine, new MembershipOptions
        {
            Mode = Model.Mode,
            Priority = (byte)Model.Self.Priority,
            Preemption = Model.Config.Cluster.Preemption,
            StartsSynchronized = false,
        }, DataPlanePlugin?.WrapSink(_sink) ?? _sink, _time, _loggerFactory.CreateLogger("ClusterSync.Membership"));
        _membership.StateChanged += OnStateChanged;
        if (Model.Config.Hooks.HasAny())
        {
            _hooks = new StateHooks(Model.Config.Hooks, Model.Path, Engine.MemberId, DataPlanePlugin,
                () => Engine.Failure ?? Engine.TransportFailure, _time, _loggerFactory.CreateLogger("ClusterSync.Hooks"));
            _hooks.Start(_membership);
        }

        Generator?.Attach(_membership, _sink);
        Witness.Attach(_membership);
        if (Model.Config.DataPlane.Source == DataPlaneConfig.SourceFeed)
        {
            _feed = new DataPlaneFeed(Engine, Model.Config.DataPlane.FeedPort, () => IsActive, _loggerFactory.CreateLogger("ClusterSync.Feed"));
            try
            {
                _feed.Start();
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                throw new NodeStartException($"{Model.Path}: dataPlane.feedPort: cannot listen on TCP 127.0.0.1:{Model.Config.DataPlane.FeedPort}: {ex.Message}");
            }
        }

        Engine.Start();
        Log.NodeStarted(_logger, Model.Self.Id, Model.LocalEndPoint.ToString(), Model.PeerMembers.Count, Model.Config.DataPlane.Source);
        Generator?.Start(_stop.Token);
        DataPlanePlugin?.Start(Engine, () => IsActive, _stop.Token);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => ShutdownAsync();

    /// <summary>
    /// The one shutdown path, run once (by the host's stop, or by <see cref="Dispose"/> when the host never stopped
    /// it): stops the sources, the controller, the pulls and the full sync server, then the engine and adaptive mode.
    /// </summary>
    private Task ShutdownAsync()
    {
        lock (_shutdownLock)
        {
            return _shutdown ??= RunShutdownAsync();
        }
    }

    private async Task RunShutdownAsync()
    {
        _stop.Cancel();
        Generator?.Join(TimeSpan.FromSeconds(5));
        DataPlanePlugin?.Stop(TimeSpan.FromSeconds(5));
        _feed?.Dispose();
        _membership?.Dispose();
        if (_hooks is not null)
        {
            await _hooks.DisposeAsync().ConfigureAwait(false); // runs the Down job first: virtual addresses removed, onStandby
        }

        await StopPullsAsync().ConfigureAwait(false);
        if (_fullSyncServer is not null)
        {
            await _fullSyncServer.DisposeAsync().ConfigureAwait(false);
        }

        ((_fullSyncChannel ?? _fullSyncStreams) as IDisposable)?.Dispose();
        Engine.Dispose();
        Adaptive.Dispose();
        Log.NodeStopped(_logger, Model.Self.Id, Submitted);
    }

    public void Dispose()
    {
        // The host disposes the hosted service, and NodeHost disposes the runtime it composed.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        ShutdownAsync().GetAwaiter().GetResult();
        DataPlanePlugin?.Dispose();
        Plugins.Dispose();
        _gc.Dispose();
        _stop.Dispose();
    }

    /// <summary>The runtime's log messages (also the generator's, <see cref="GeneratorDriver"/>).</summary>
    internal static partial class Log
    {
        [LoggerMessage(4001, LogLevel.Information, "Node {Member} running: sync on {Address} (UDP), {Peers} peers, data plane '{Source}'")]
        public static partial void NodeStarted(ILogger logger, int member, string address, int peers, string source);

        [LoggerMessage(4002, LogLevel.Information, "Node {Member} stopped after submitting {Submitted} changes")]
        public static partial void NodeStopped(ILogger logger, int member, long submitted);

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

        [LoggerMessage(4003, LogLevel.Information, "Generator finished: {Submitted} changes submitted, {Live} live connections")]
        public static partial void GeneratorFinished(ILogger logger, long submitted, int live);

        [LoggerMessage(4009, LogLevel.Information, "Member {Member} is Active: the generator drives, continuing {Live} taken-over connections")]
        public static partial void GeneratorDriving(ILogger logger, byte member, int live);

        [LoggerMessage(4020, LogLevel.Information, "Member {Member}: owners now {Owners}; the generator dropped {Dropped} connections that moved away and drives {Added} taken over ({Live} live)")]
        public static partial void Rerouted(ILogger logger, byte member, string owners, int dropped, int added, int live);
    }
}
