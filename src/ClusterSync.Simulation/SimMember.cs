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
/// the node composes them (<c>NodeRuntime</c>: it starts not synchronized; on Syncing it pulls from the Active, else the
/// best-ranked Standby, retrying every 200 ms, and with no synchronized peer alive it starts synchronized as the first
/// member; resync needed schedules a pull from that peer; pulls run one at a time). The pull worker is a simulated
/// process here; a transfer runs the real handshake, frames and apply over an in-memory stream in zero simulated time.
/// </summary>
internal sealed class SimMember : IDisposable
{
    public static readonly TimeSpan JoinRetryDelay = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan PullWorkerDelay = TimeSpan.FromMilliseconds(1);

    private readonly SimCluster _cluster;
    private readonly SortedSet<byte> _pullPeers = [];
    private bool _joinPending;
    private bool _workerBusy;
    private bool _ticking;

    public SimMember(SimCluster cluster, byte id, int incarnation, SyncEngineOptions options, MembershipOptions membership, ClusterKey key, MemberClock clock)
    {
        _cluster = cluster;
        Id = id;
        Incarnation = incarnation;
        Key = key;
        Clock = clock;
        Channel = new SimDatagramChannel(cluster.Network, id, options.PeerMemberIds, options.Mtu);
        Engine = new SyncEngine(options, Channel, key, clock);
        Sink = new InMemoryReplicaSink();
        var streams = new NoStreams();
        Server = new FullSyncServer(Engine, streams, key, time: clock) { HandshakeTimeout = TimeSpan.FromSeconds(1) };
        Client = new FullSyncClient(Engine, streams, key, time: clock) { HandshakeTimeout = TimeSpan.FromSeconds(1), IdleTimeout = TimeSpan.FromSeconds(3) };
        Membership = new MembershipController(Engine, membership, Sink, clock);
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

    /// <summary>One attempt of the join: pull from the Active (else the best-ranked Standby); nobody synchronized alive: synchronized at once.</summary>
    private void JoinStep()
    {
        if (!Up)
        {
            return;
        }

        var views = new MemberView[_cluster.Size - 1];
        int n = Engine.GetPeerViews(views);
        MemberView? source = null;
        foreach (var v in views.AsSpan(0, n))
        {
            if (!v.Eligible)
            {
                continue;
            }

            if (source is not { } s
                || (v.State == MemberState.Active && s.State != MemberState.Active)
                || (v.State == s.State && v.Outranks(s)))
            {
                source = v;
            }
        }

        if (source is not { } from)
        {
            StartedAsFirstMember = true;
            _cluster.OnFirstMember(this);
            Membership.MarkSynchronized();
            _cluster.World.Schedule(PullWorkerDelay, PullStep);
            return;
        }

        var result = _cluster.Transfer(this, from.Id);
        if (result.Succeeded)
        {
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
