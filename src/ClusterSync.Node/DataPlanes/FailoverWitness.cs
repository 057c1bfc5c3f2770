using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Membership;

namespace ClusterSync.Node.DataPlanes;

/// <summary>What a surviving member held when it saw the Active die.</summary>
/// <param name="Peer">The member seen dead (the Active this member followed).</param>
/// <param name="DetectedUnixMs">When (this machine's clock, Unix ms) this member saw it dead.</param>
/// <param name="BeforePromotion">True when the replica is the one held before this member promoted itself (the normal case).</param>
/// <param name="Connections">
/// The keys of this member's live connections at that moment: what the failover accounting needs (was a connection
/// synchronized to a survivor), a third of what copying the entries too would take (issue 13: no copy of the whole
/// table with its entries on the takeover path).
/// </param>
public sealed record DeathCapture(byte Peer, double DetectedUnixMs, bool BeforePromotion, IReadOnlyCollection<ConnectionKey> Connections);

/// <summary>
/// Records, on a surviving member, what it held at the instant it saw the Active member die, and when this member
/// itself started serving as Active. This is the "synchronized at failover" evidence of <c>clustersync demo</c> and
/// <c>bench failover</c>: after the kill nothing new can reach a survivor from the dead Active, so a survivor's replica
/// at detection is exactly what the Active had synchronized to it.
/// </summary>
/// <remarks>
/// Subscribed to <see cref="SyncEngine.Ticked"/> before the <see cref="MembershipController"/>, so it sees the death
/// on the tick before (or the same tick as) the controller. A survivor that will not take over (the election says so)
/// snapshots its replica at once. The survivor that takes over does not copy its table a second time on the failover
/// path: the replica its controller commits while Promoting, before announcing Active and before anything new is
/// submitted, is its capture (the sink's committed table, immutable once committed), taken when it turns Active. Should the dead interval expire
/// between the witness's and the controller's reads, the capture comes one tick later with
/// <see cref="DeathCapture.BeforePromotion"/> false (still exact while the new Active submits nothing of its own).
/// </remarks>
public sealed class FailoverWitness
{
    private readonly SyncEngine _engine;
    private readonly InMemoryReplicaSink _sink;
    private readonly byte _priority;
    private readonly bool _preemption;
    private readonly ClusterMode _mode;
    private readonly TimeProvider _time;
    private readonly MemberView[] _views;
    private MembershipController? _membership;
    private byte _activePeer;
    private (byte Peer, double At)? _takingOver;
    private DeathCapture? _capture;
    private double _servingUnixMs;

    public FailoverWitness(SyncEngine engine, InMemoryReplicaSink sink, byte priority, bool preemption, ClusterMode mode, TimeProvider time)
    {
        _engine = engine;
        _sink = sink;
        _priority = priority;
        _preemption = preemption;
        _mode = mode;
        _time = time;
        _views = new MemberView[engine.Options.PeerMemberIds.Count];
        Heard = new HeartbeatLog(engine, time);
        engine.Ticked += OnTick;
        _ = Task.Run(WarmUpCommitPath);
    }

    /// <summary>The last capture, or null while this member has not seen an Active peer die.</summary>
    public DeathCapture? Capture => Volatile.Read(ref _capture);

    /// <summary>When this member heard each peer, tick by tick (<c>/failover/heard</c>).</summary>
    public HeartbeatLog Heard { get; }

    /// <summary>When this member last became Active (Unix ms, after its commit), or 0.</summary>
    public double ServingUnixMs => Volatile.Read(ref _servingUnixMs);

    public void Attach(MembershipController membership)
    {
        _membership = membership;

        // Raised on the tick thread inside the controller's lock, after the commit: no copying here.
        membership.StateChanged += (_, to) =>
        {
            if (to != MemberState.Active)
            {
                return;
            }

            Volatile.Write(ref _servingUnixMs, UnixMs(_time));
            if (_takingOver is { } t)
            {
                _takingOver = null;
                Volatile.Write(ref _capture, new DeathCapture(t.Peer, t.At, BeforePromotion: true, new KeysOf(_sink.CommittedSnapshot)));
            }
        };
    }

    public static double UnixMs(TimeProvider time) => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;

    private void OnTick()
    {
        Heard.Record();
        var state = _membership?.State ?? MemberState.Init;
        if (_takingOver is { } pending && state != MemberState.Promoting
            && !(state == MemberState.Standby && UnixMs(_time) - pending.At < 2 * _engine.Options.DeadInterval.TotalMilliseconds))
        {
            // (While Promoting the commit runs off this tick: the capture is the committed replica, taken at Active. A
            // Standby whose controller has not promoted yet, its own dead-interval check a tick or a stall allowance
            // behind the witness's, is waited for up to two dead intervals: a copy of the table on the member that is
            // about to commit it is what issue 13 took out of the takeover path.)
            // Not promoting after all: capture the table as it is.
            _takingOver = null;
            CaptureOffTick(pending.Peer, pending.At, state != MemberState.Active);
        }

        int n = _engine.GetPeerViews(_views);
        var peers = _views.AsSpan(0, n);
        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active)
            {
                _activePeer = p.Id;
            }
            else if (!p.Alive && p.Id == _activePeer)
            {
                _activePeer = 0;
                double at = UnixMs(_time);
                var self = new MemberView(_engine.MemberId, _priority, state, true);
                if (_mode == ClusterMode.HighAvailability && state == MemberState.Standby
                    && HighAvailabilityElection.Decide(self, peers, _preemption) == ElectionOutcome.TakeOver)
                {
                    _takingOver = (p.Id, at); // the controller commits right after this handler, in this tick
                }
                else
                {
                    CaptureOffTick(p.Id, at, state != MemberState.Active);
                }
            }
        }
    }

    /// <summary>
    /// Copies the keys of the live connections on the thread pool, in bounded steps of the table lock: a 1,000,000-connection copy on the
    /// control tick held the tick (and, holding the table lock, the receiver) for hundreds of ms. Exact all the same:
    /// after the death nothing new reaches this member from the dead Active.
    /// </summary>
    private void CaptureOffTick(byte peer, double at, bool beforePromotion)
        => _ = Task.Run(() => Volatile.Write(ref _capture, new DeathCapture(peer, at, beforePromotion, CaptureKeys(_engine))));

    private const int CaptureStepSlots = 4096;

    /// <summary>The keys of the live connections, <see cref="CaptureStepSlots"/> slots per hold of the table lock, into one array of the table's size (no entries, no list growth, no trimming copy).</summary>
    internal static ArraySegment<ConnectionKey> CaptureKeys(SyncEngine engine)
    {
        var visitor = new KeyCollector(engine.LiveConnectionCount + 1024);
        int cursor = 0;
        do
        {
            cursor = engine.VisitLive(ref visitor, cursor, CaptureStepSlots);
        }
        while (cursor >= 0);

        return new ArraySegment<ConnectionKey>(visitor.Keys, 0, visitor.Count);
    }

    private struct KeyCollector(int capacity) : ILiveConnectionVisitor
    {
        public ConnectionKey[] Keys = GC.AllocateUninitializedArray<ConnectionKey>(capacity);
        public int Count;

        public void Visit(in ConnectionKey key, in ConnectionEntry entry)
        {
            if (Count == Keys.Length)
            {
                Array.Resize(ref Keys, Keys.Length * 2);
            }

            Keys[Count++] = key;
        }
    }

    /// <summary>The keys of a committed snapshot, without a copy.</summary>
    private sealed class KeysOf(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica) : IReadOnlyCollection<ConnectionKey>
    {
        public int Count => replica.Count;

        public IEnumerator<ConnectionKey> GetEnumerator()
        {
            for (int i = 0; i < replica.Count; i++)
            {
                yield return replica[i].Key;
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>
    /// Compiles the sink's commit and by-key view ahead of need (JIT at tier 0 of a generic dictionary over struct keys
    /// costs tens of ms on this 2-vCPU VM): a few small commits into a throwaway sink at start.
    /// </summary>
    private static void WarmUpCommitPath()
    {
        var replica = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(64);
        for (int i = 0; i < 64; i++)
        {
            replica.Add(new(ConnectionKey.IPv4(0x0A00_0000u + (uint)i, 0x0A00_0001, (ushort)(1024 + i), 443, 6), new ConnectionEntry { Version = 1 }));
        }

        for (int round = 0; round < 64; round++)
        {
            var sink = new InMemoryReplicaSink();
            sink.Commit(replica);
            _ = sink.Committed.Count;
        }
    }
}
