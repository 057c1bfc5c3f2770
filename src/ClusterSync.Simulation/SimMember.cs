using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Membership;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Simulation;

/// <summary>
/// One life (incarnation) of a simulated member: the real <see cref="SyncEngine"/> in stepped mode, the real
/// <see cref="MembershipController"/> and the real <see cref="FullSyncServer"/>/<see cref="FullSyncClient"/>, composed as
/// the node composes them (<c>NodeRuntime</c>: it starts not synchronized; on Syncing the Core <see cref="JoinPlanner"/>
/// decides where it pulls from and whether it may start synchronized as the first member, a failed pull is retried after
/// 200 ms; resync needed schedules a pull from that peer; pulls run one at a time). The pull worker is a simulated
/// process here; a transfer runs the real handshake, frames and apply over an in-memory stream in zero simulated time.
/// </summary>
internal sealed class SimMember : IDisposable
{
    public static readonly TimeSpan JoinRetryDelay = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan PullWorkerDelay = TimeSpan.FromMilliseconds(1);
    public static readonly TimeSpan JoinWaitDelay = TimeSpan.FromMilliseconds(100);

    /// <summary>Simulated time each step of a promotion (the replica's snapshot, then its commit) takes off the control tick.</summary>
    public static readonly TimeSpan PromotionStepDelay = TimeSpan.FromMilliseconds(2);

    private readonly SimCluster _cluster;
    private readonly SortedSet<byte> _pullPeers = [];
    private bool _joinPending;
    private bool _workerBusy;
    private bool _ticking;
    private readonly byte _priority;
    private JoinPlanner? _planner;

    public SimMember(SimCluster cluster, byte id, int incarnation, SyncEngineOptions options, MembershipOptions membership, ClusterKey key, MemberClock clock)
    {
        _cluster = cluster;
        _priority = membership.Priority;
        Id = id;
        Incarnation = incarnation;
        Key = key;
        Clock = clock;
        Channel = new SimDatagramChannel(cluster.Network, id, options.PeerMemberIds, options.Mtu);
        Engine = new SyncEngine(options, Channel, key, clock);
        Sink = new InMemoryReplicaSink();
        var streams = new NoStreams();
        Server = new FullSyncServer(Engine, streams, key, time: clock)
        {
            HandshakeTimeout = TimeSpan.FromSeconds(1),
            CanServe = () => Membership?.State is MemberState.Standby or MemberState.Active or MemberState.Promoting,
        };
        Client = new FullSyncClient(Engine, streams, key, time: clock) { HandshakeTimeout = TimeSpan.FromSeconds(1), IdleTimeout = TimeSpan.FromSeconds(3) };
        Membership = new MembershipController(Engine, membership, Sink, clock);

        // A promotion's snapshot and commit run off the control tick (a thread of their own in a node): here each step
        // is an event a little later on the world's clock, so a member can be seen Promoting, and can die mid-commit.
        Membership.PromotionRunner = work => _cluster.World.Schedule(PromotionStepDelay, () =>
        {
            if (Up)
            {
                work();
            }
        });

        // Likewise a load-sharing ownership commit (the simulator runs high availability, where none happens).
        Membership.OwnershipRunner = Membership.PromotionRunner;
        Membership.StateChanged += OnStateChanged;
        Engine.ResyncNeeded += OnResyncNeeded;
    }

    public byte Id { get; }

    public int Incarnation { get; }

    public ClusterKey Key { get; }

    public MemberClock Clock { get; }

    public SimDatagramChannel Channel { get; }

    public SyncEngine Engine { get; }

    public MembershipController Membership { get; }

    public InMemoryReplicaSink Sink { get; }

    public FullSyncServer Server { get; }

    public FullSyncClient Client { get; }

    public bool Up { get; private set; }

    public MemberState State => Membership.State;

    /// <summary>Full syncs this life completed (as the joiner).</summary>
    public int PullsCompleted { get; private set; }

    /// <summary>This life marked itself synchronized without a completed pull (the "first member" path).</summary>
    public bool StartedAsFirstMember { get; private set; }

    public void Start()
    {
        Engine.StartStepped();
        Up = true;
    }

    /// <summary>Every ack interval: the engine's control tick (membership evaluates on it), then the sender.</summary>
    public void Tick()
    {
        if (!Up)
        {
            return;
        }

        _ticking = true;
        try
        {
            Engine.OnTick();
        }
        finally
        {
            _ticking = false;
        }

        StepSender();
    }

    public void Receive(byte[] datagram)
    {
        if (!Up)
        {
            return;
        }

        Engine.HandleDatagram(datagram);
        StepSender();
    }

    public void Submit(ReadOnlySpan<ConnectionEvent> changes)
    {
        Engine.Submit(changes);
        StepSender();
    }

    public void StepSender()
    {
        if (Up)
        {
            Engine.StepSender();
        }
    }

    /// <summary>SIGKILL: no farewell, nothing more sent or received.</summary>
    public void Crash()
    {
        if (!Up)
        {
            return;
        }

        Up = false;
        Membership.StateChanged -= OnStateChanged;
        Engine.ResyncNeeded -= OnResyncNeeded;
        Engine.Crash();
    }

    public void Dispose() => Crash();

    // ------------------------------------------------------------------ join and resync (as NodeRuntime)

    private void OnStateChanged(MemberState from, MemberState to)
    {
        _cluster.OnStateChanged(this, from, to, _ticking);
        if (to == MemberState.Syncing)
        {
            RequestPull(0);
        }
    }

    private void OnResyncNeeded(byte peer, ulong lost) => RequestPull(peer);

    private void RequestPull(byte peer)
    {
        if (peer == 0)
        {
            _joinPending = true;
        }
        else
        {
            _pullPeers.Add(peer);
        }

        if (_workerBusy || !Up)
        {
            return;
        }

        _workerBusy = true;
        _cluster.World.Schedule(PullWorkerDelay, PullStep);
    }

    private void PullStep()
    {
        if (!Up)
        {
            return;
        }

        if (_joinPending)
        {
            _joinPending = false;
            JoinStep();
            return;
        }

        if (_pullPeers.Count == 0)
        {
            _workerBusy = false;
            return;
        }

        byte peer = _pullPeers.Min;
        _pullPeers.Remove(peer);
        var result = _cluster.Transfer(this, peer);
        if (result.Succeeded)
        {
            PullsCompleted++;
        }

        _cluster.World.Schedule(TransferTime(result), PullStep);
    }

    /// <summary>
    /// One step of the join, as <see cref="JoinPlanner"/> decides (the node's join, <c>NodeRuntime.JoinAsync</c>): pull
    /// from the planner's source until one pull succeeds, look again after <see cref="JoinWaitDelay"/> while it says wait,
    /// start synchronized only when it says this member is the first.
    /// </summary>
    private void JoinStep()
    {
        if (!Up)
        {
            return;
        }

        _planner ??= new JoinPlanner(Id, _priority, Engine.Options.DeadInterval, Clock);
        var views = new MemberView[_cluster.Size - 1];
        int n = Engine.GetPeerViews(views);
        var decision = _planner.Next(views.AsSpan(0, n));
        if (decision.Step == ClusterSync.Membership.JoinStep.FirstMember)
        {
            _planner = null;
            StartedAsFirstMember = true;
            _cluster.OnFirstMember(this, $"{decision.Reason}; views: {string.Join(", ", views.AsSpan(0, n).ToArray().Select(v => $"m{v.Id} {v.State}{(v.Alive ? "" : " (dead)")}"))}");
            Membership.MarkSynchronized();
            _cluster.World.Schedule(PullWorkerDelay, PullStep);
            return;
        }

        if (decision.Step == ClusterSync.Membership.JoinStep.Wait)
        {
            _cluster.World.Schedule(JoinWaitDelay, JoinStep);
            return;
        }

        var result = _cluster.Transfer(this, decision.Source);
        if (result.Succeeded)
        {
            _planner = null;
            PullsCompleted++;
            Membership.MarkSynchronized();
            _cluster.World.Schedule(TransferTime(result), PullStep);
            return;
        }

        _cluster.World.Schedule(TransferTime(result) + JoinRetryDelay, JoinStep);
    }

    /// <summary>How long the worker was busy with a transfer: a connect to an unreachable member waits for the handshake time-out.</summary>
    private TimeSpan TransferTime(FullSyncResult result)
        => result.Status is FullSyncStatus.TimedOut ? Client.HandshakeTimeout : PullWorkerDelay;

    /// <summary>Full sync here goes through <see cref="SimCluster.Transfer"/>; the stream channel is never used.</summary>
    private sealed class NoStreams : IStreamChannel
    {
        public ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }
}
