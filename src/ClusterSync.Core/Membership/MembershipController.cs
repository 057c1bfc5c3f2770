using ClusterSync.Engine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Membership;

/// <summary>High-availability settings of a member.</summary>
public sealed record MembershipOptions
{
    public ClusterMode Mode { get; init; } = ClusterMode.HighAvailability;

    /// <summary>Higher wins the election; ties go to the lower member id.</summary>
    public byte Priority { get; init; } = 100;

    /// <summary>A higher-ranked member takes the Active role back when it returns (off by default, as in ClusterXL).</summary>
    public bool Preemption { get; init; }

    /// <summary>
    /// True when the member starts with a complete table (a new cluster). False for a member that joins a running
    /// cluster: it stays Syncing until a full sync completes (<see cref="MembershipController.MarkSynchronized"/>).
    /// </summary>
    public bool StartsSynchronized { get; init; } = true;
}

/// <summary>
/// Runs the member's state machine on every control tick: Init → (Syncing) → Standby → Active, from the peers'
/// heartbeats. In high availability the election decides (<see cref="HighAvailabilityElection"/>); a member that
/// promotes itself commits its replica into its data plane first, then announces itself Active. In load sharing
/// every synchronized member is Active.
/// </summary>
public sealed partial class MembershipController : IDisposable
{
    private readonly SyncEngine _engine;
    private readonly MembershipOptions _options;
    private readonly IReplicaSink _sink;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _listeningSinceTimestamp;
    private readonly object _sync = new();
    private MemberView[] _views = [];
    private bool _synchronized;
    private byte _lastActivePeer;
    private bool _sawActive;
    private long _failovers;
    private long _splitBrains;
    private long _lastEvaluateTimestamp;
    private long _stalledUntilTimestamp;
    private bool _cutOff;
    private long _rejoinedUntilTimestamp;
    private long _stalls;
    private readonly HashSet<byte> _splitBrainPeers = [];
    private byte _handoverTo;
    private readonly bool[] _activeLastTick = new bool[256]; // by member id: alive and Active at the previous tick
    private byte _followedActive;
    private readonly ulong[] _ackSeen = new ulong[256]; // by member id: its acknowledgement of this member's stream, last seen
    private readonly long[] _ackProgressTimestamp = new long[256]; // when it last moved (or the member was caught up)
    private bool _standbyHandover;
    private long _handoverSinceTimestamp;
    private long _roleFreeSinceTimestamp; // a Standby: when it first saw no live Active or Promoting member (0: not now)

    public MembershipController(SyncEngine engine, MembershipOptions options, IReplicaSink sink, TimeProvider? time = null, ILogger? logger = null)
    {
        _engine = engine;
        _options = options;
        _sink = sink;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _synchronized = options.StartsSynchronized;
        _views = new MemberView[engine.Options.PeerMemberIds.Count];
        PromotionRunner = ReferenceEquals(_time, TimeProvider.System) ? RunOnPromotionThread : RunInline;
        OwnershipRunner = ReferenceEquals(_time, TimeProvider.System) ? RunOnOwnershipThread : RunInline;
        Publish(MemberState.Init);
        engine.Ticked += Evaluate;
    }

    public MemberState State { get; private set; }

    public long Failovers => Interlocked.Read(ref _failovers);

    public long SplitBrainsResolved => Interlocked.Read(ref _splitBrains);

    /// <summary>
    /// Times this member found its own control tick late by more than half a dead interval (a process stall: GC,
    /// CPU starvation). Peers' heartbeats may then be waiting unread, so a takeover waits one dead interval.
    /// </summary>
    public long LocalStalls => Interlocked.Read(ref _stalls);

    /// <summary>Milliseconds the last promotion took from the Active's last heartbeat to this member serving.</summary>
    public double LastFailoverMilliseconds { get; private set; }

    /// <summary>Connections committed into the data plane at the last promotion.</summary>
    public int LastCommitted { get; private set; }

    public event Action<MemberState, MemberState>? StateChanged;

    /// <summary>A joining member's full sync completed: it may now become Standby (and take over).</summary>
    public void MarkSynchronized()
    {
        lock (_sync)
        {
            _synchronized = true;
        }
    }

    /// <summary>This member stops (or is being stopped): it advertises Down in its last heartbeats.</summary>
    public void Dispose()
    {
        _engine.Ticked -= Evaluate;
        FailPendingAdmin();
        CancelPromotion();
        CancelOwnershipCommitOnStop();
        Publish(MemberState.Down, "stopping");
    }

    /// <summary>One step of the state machine; called on every control tick.</summary>
    internal void Evaluate()
    {
        lock (_sync)
        {
            int n = _engine.GetPeerViews(_views);
            var peers = _views.AsSpan(0, n);
            foreach (var p in peers)
            {
                if (p.Alive && p.State == MemberState.Active)
                {
                    _lastActivePeer = p.Id;
                    _sawActive = true;
                }
            }

            // The engine's own stall evidence (its heartbeat thread woke far too late: this process was stalled) counts
            // as this tick's: a member noticing its own stall does not accuse its peers.
            bool engineStalled = _engine.StalledRecently();

            // A tick far later than the ack interval means this process itself was stalled: the silence of a peer
            // is then no evidence that the peer died (its heartbeats may be unread in the socket buffer). Hold any
            // takeover for one dead interval after such a stall, as the receiver catches up.
            long now = _time.GetTimestamp();
            double deadMs = _engine.Options.DeadInterval.TotalMilliseconds;
            if (_lastEvaluateTimestamp != 0 && Elapsed(_lastEvaluateTimestamp) > deadMs / 2)
            {
                Interlocked.Increment(ref _stalls);
                Log.LocalStall(_logger, _engine.MemberId, Elapsed(_lastEvaluateTimestamp));
                _stalledUntilTimestamp = now + (long)(deadMs * _time.TimestampFrequency / 1000.0);
            }

            _lastEvaluateTimestamp = now;
            bool stalled = now < _stalledUntilTimestamp || engineStalled;

            // Hearing no peer at all is more likely this member's own isolation than every peer's death. Once it hears
            // one again, the others' heartbeats are on their way: hold any takeover for one dead interval, or it takes
            // the role from a higher-ranked member it has simply not heard yet (simulator seed 955: back from a
            // partition, a member promoted itself 4 ms before the higher-ranked one, which then took the role over).
            bool anyAlive = false;
            foreach (var p in peers)
            {
                anyAlive |= p.Alive;
            }

            if (peers.Length > 0 && !anyAlive)
            {
                _cutOff = true;
            }
            else if (anyAlive && _cutOff)
            {
                _cutOff = false;
                _rejoinedUntilTimestamp = now + (long)(deadMs * _time.TimestampFrequency / 1000.0);
            }

            // An Active that steps down to Standby (not Down: a clean stop says Down) does so for another Active it
            // hears, the winner of a split brain. This member may not hear that winner yet (it was on the other side of
            // the partition): hold any takeover for one dead interval, or it takes the role the moment the loser yields
            // and the winner then steps down for it, preemption off (simulator seed 1597).
            foreach (var p in peers)
            {
                bool active = p.Alive && p.HoldsRole; // a Promoting member that abandons its promotion steps down likewise
                if (p.Alive && p.State == MemberState.Standby && _activeLastTick[p.Id])
                {
                    _rejoinedUntilTimestamp = Math.Max(_rejoinedUntilTimestamp, now + (long)(deadMs * _time.TimestampFrequency / 1000.0));
                }

                _activeLastTick[p.Id] = active;
            }

            bool rejoining = now < _rejoinedUntilTimestamp;
            if (_listeningSinceTimestamp == 0)
            {
                _listeningSinceTimestamp = now; // the first tick: the engine runs, its receiver listens from here
            }

            var self = new MemberView(_engine.MemberId, _options.Priority, State, true);
            switch (State)
            {
                case MemberState.Init:
                    // Listen for one dead interval of running ticks before deciding, so an existing Active is heard
                    // first: counted from the first tick (not from construction: a slow start-up would eat it), and
                    // not while this process is catching up after a stall (its peers' heartbeats may be unread).
                    if (!stalled && Elapsed(_listeningSinceTimestamp) >= deadMs)
                    {
                        Publish(_synchronized ? MemberState.Standby : MemberState.Syncing);
                    }

                    break;
                case MemberState.Syncing:
                    if (_synchronized && !OnlyStandbysHeard(peers))
                    {
                        Publish(MemberState.Standby);
                    }

                    break;
                case MemberState.Standby when _options.Mode == ClusterMode.LoadSharing:
                    if (_adminDown)
                    {
                        Publish(MemberState.Maintenance); // admin down: owns nothing, out of the owner set
                        break;
                    }

                    // Commits only the share this member owns (UpdateOwners, below), not the whole replica.
                    PromoteLoadSharing();
                    break;
                case MemberState.Standby:
                    HandOverToNewActive(peers);
                    switch (HandedTheRole(peers, out byte from))
                    {
                        case Handoff.ToThisMember:
                            Promote(peers, $"member {from} handed the Active role over", contested: false);
                            EvaluatePromotion(self with { State = MemberState.Promoting }, peers, stalled, now);
                            break;
                        case Handoff.ToAnother:
                            _roleFreeSinceTimestamp = 0;
                            break; // a leaving Active named another successor: no election until it took over or gave up
                        default:
                            var electionPeers = WithoutDeafActives(peers, now);
                            var outcome = HighAvailabilityElection.Decide(self, electionPeers, _options.Preemption, waitForStarting: !_sawActive);
                            string takeOverReason = "no live active member";
                            if (outcome == ElectionOutcome.Stay && SuccessorLate(self, electionPeers, now, held: stalled || rejoining, out byte late))
                            {
                                outcome = HighAvailabilityElection.Decide(self, WithoutHigherStandbys(self, electionPeers), _options.Preemption, waitForStarting: !_sawActive);
                                takeOverReason = $"no live active member, and member {late} of higher rank did not take over within {SuccessorWindowMs():F0} ms";
                            }

                            if ((outcome is ElectionOutcome.TakeOver or ElectionOutcome.Preempt) && !stalled && !rejoining)
                            {
                                Promote(peers, outcome == ElectionOutcome.TakeOver ? takeOverReason : "preemption", contested: outcome == ElectionOutcome.TakeOver);
                                EvaluatePromotion(self with { State = MemberState.Promoting }, peers, stalled, now); // done at once when the steps run inline
                            }

                            break;
                    }

                    break;
                case MemberState.Promoting:
                    EvaluatePromotion(self, peers, stalled, now);
                    break;
                case MemberState.Active when _options.Mode == ClusterMode.HighAvailability:
                    if (HighAvailabilityElection.Decide(self, peers, _options.Preemption, waitForStarting: !_sawActive) == ElectionOutcome.StepDownSplitBrain)
                    {
                        AbortLeave("another Active member of higher rank appeared (split brain)");
                        StepDownAfterHandover(peers, now);
                    }
                    else
                    {
                        CancelHandover();
                        NoteLowerActivePeers(peers);
                        LeaveWhenHandedOver(peers, now);
                    }

                    break;
                case MemberState.Maintenance:
                    EvaluateMaintenance(peers, now);
                    break;
            }

            CompleteAdminIfDone();

            if (_options.Mode == ClusterMode.LoadSharing)
            {
                UpdateOwners(peers, stalled, now);
            }
        }
    }

    /// <summary>
    /// Split brain, and this member ranks lower: it hands its table over to the winner before it steps down (make
    /// before break). While both were Active each served and replicated connections the other may never have received
    /// (a partition, a one-way cut, the last deltas of a member that died meanwhile, which this one holds); the moment
    /// this member steps down its traffic goes to the winner, so the winner must hold them first. The engine re-sends
    /// the whole table; this member stays Active until the winner acknowledged all of it and every change since, or
    /// until <see cref="HandoverLimit"/> passed (a winner that cannot hear this member: then it steps down anyway).
    /// </summary>
    private void StepDownAfterHandover(ReadOnlySpan<MemberView> peers, long now)
    {
        byte winner = 0;
        MemberView best = default;
        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active && (winner == 0 || p.Outranks(best)))
            {
                winner = p.Id;
                best = p;
            }
        }

        if (_handoverTo != winner)
        {
            _handoverTo = winner;
            _handoverSinceTimestamp = now;
            _engine.BeginHandover(winner);
            Log.HandingOver(_logger, _engine.MemberId, winner);
        }

        bool complete = _engine.HandedOverTo(winner);
        if (!complete && Elapsed(_handoverSinceTimestamp) < HandoverLimit.TotalMilliseconds)
        {
            return;
        }

        if (!complete)
        {
            Log.HandoverIncomplete(_logger, _engine.MemberId, winner, Elapsed(_handoverSinceTimestamp));
        }

        CancelHandover();
        _followedActive = winner; // it holds this member's table already
        Interlocked.Increment(ref _splitBrains);
        Log.SplitBrain(_logger, _engine.MemberId);
        Publish(MemberState.Standby, $"split brain: member {winner} is Active and outranks this member");
    }

    /// <summary>
    /// A Standby that starts following a different Active (a failover, or the end of a split brain it saw from the
    /// side) re-sends its table to it once: the new Active may lack changes that reached this member only (a delta lost
    /// on its link before the old Active died or was cut off from it, the writes of the other side of a split brain), and
    /// it applies what is newer by version. The new Active's own connections are left out (see
    /// <see cref="SyncEngine.BeginHandover"/>).
    /// </summary>
    private void HandOverToNewActive(ReadOnlySpan<MemberView> peers)
    {
        if (_standbyHandover && !_engine.HandoverQueued && !_engine.Relaying)
        {
            _standbyHandover = false;
            _engine.EndHandover();
        }

        if (_options.Mode != ClusterMode.HighAvailability)
        {
            return;
        }

        byte followed = 0;
        MemberView best = default;
        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active && (followed == 0 || p.Outranks(best)))
            {
                followed = p.Id;
                best = p;
            }
        }

        RelayAcrossSplitBrain(peers, followed);
        if (followed == 0 || followed == _followedActive)
        {
            return;
        }

        byte previous = _followedActive;
        _followedActive = followed;
        if (previous != 0)
        {
            _standbyHandover = true;
            _engine.BeginHandover(followed, paced: true); // in steps: the new Active commits its own replica meanwhile
            Log.HandingOverToNewActive(_logger, _engine.MemberId, previous, followed);
        }
    }

    /// <summary>
    /// A Standby that hears two Actives follows the higher-ranked one, but the lower-ranked one still serves and writes
    /// until it steps down (after its handover, or ten dead intervals when the winner cannot hear it) or dies. If the winner
    /// does not hear it (a one-way cut, a partition only partly healed), this Standby may be the only path for those
    /// changes: it relays what it applies from either Active to both (<see cref="SyncEngine.BeginRelay"/>), so whichever
    /// takes the traffic when the other dies holds what the Standbys held (simulator seeds 3809, 17161).
    /// </summary>
    private void RelayAcrossSplitBrain(ReadOnlySpan<MemberView> peers, byte followed)
    {
        bool other = false;
        foreach (var p in peers)
        {
            other |= p.Alive && p.State == MemberState.Active && p.Id != followed;
        }

        if (followed != 0 && other)
        {
            _engine.BeginRelay(followed);
        }
        else if (_engine.Relaying)
        {
            _engine.EndRelay();
            _standbyHandover = true; // what is still queued goes out; the handover ends once it drained (above)
        }
    }

    /// <summary>
    /// A joiner that hears no live Active but a live Standby stays Syncing (not eligible) although its full sync completed:
    /// it pulled from a Standby (the Active out of its reach) or from an Active that has died since, and does not get the
    /// changes made after that snapshot; the Standby held the replica all along. As a Standby it would outrank that member
    /// and take over without them (simulator seed 5700: a joiner cut off from the Active pulled from a Standby and took the
    /// traffic 5 ms later, 4 connections short). It becomes Standby once it hears an Active (one of those Standbys took
    /// over, or the cut healed), or once no Standby is left alive. High availability only.
    /// </summary>
    private bool OnlyStandbysHeard(ReadOnlySpan<MemberView> peers)
    {
        if (_options.Mode != ClusterMode.HighAvailability)
        {
            return false;
        }

        bool standby = false;
        foreach (var p in peers)
        {
            if (p.Alive && p.HoldsRole)
            {
                return false;
            }

            standby |= p.Alive && p.State == MemberState.Standby;
        }

        return standby;
    }

    /// <summary>
    /// The peers as the election of a Standby sees them: an Active that has not acknowledged this member's data stream
    /// for a dead interval while behind it (what this Standby re-sent or relayed to it, see <see cref="HandOverToNewActive"/>
    /// and <see cref="RelayAcrossSplitBrain"/>) does not hear this member: a one-way cut, or its side of a partition only
    /// partly healed. It is counted as not alive, so when the Active this Standby does reach dies, it takes over itself
    /// rather than leave the traffic to a member that never received what it holds (simulator seed 9919: the isolated m1
    /// was heard by m3 only; m3 stayed Standby when the serving m2 died and the traffic went to m1, 194 connections short).
    /// If both end up Active, the split brain resolves by rank with its handover, as for any partition.
    /// </summary>
    private ReadOnlySpan<MemberView> WithoutDeafActives(ReadOnlySpan<MemberView> peers, long now)
    {
        MemberView[]? masked = null;
        double deadMs = _engine.Options.DeadInterval.TotalMilliseconds;
        for (int i = 0; i < peers.Length; i++)
        {
            var p = peers[i];
            var (acked, sent) = _engine.AckStatus(p.Id);
            if (acked >= sent || acked != _ackSeen[p.Id] || !p.Alive || _ackProgressTimestamp[p.Id] == 0)
            {
                _ackSeen[p.Id] = acked;
                _ackProgressTimestamp[p.Id] = now;
                continue;
            }

            if (p.HoldsRole && Elapsed(_ackProgressTimestamp[p.Id]) > deadMs)
            {
                masked ??= peers.ToArray();
                masked[i] = p with { Alive = false };
            }
        }

        return masked is null ? peers : masked;
    }

    /// <summary>
    /// A Standby that sees the role free (no live Active or Promoting member) after a failover (it has seen an Active) defers to a live Standby of higher rank, which
    /// sees the same death and takes over, only for <see cref="SuccessorWindowMs"/> from the tick it saw the role free:
    /// past it, with that member still neither Promoting nor Active, this member takes over itself (simulator seed 3467:
    /// the Active crashed, the higher-ranked m2, on a 47 % lossy link, still heard the Active's delayed datagrams, then
    /// crashed too; m1 waited for it until it was seen dead, 555 ms after the Active's crash, while the traffic went to an
    /// isolated Active that lacked 175 of 186 connections). The takeover is contested: if the higher-ranked member's
    /// Promoting announcement arrives within the agreement window this member abandons; if it arrives later, the
    /// higher-ranked member sees this one holding the role and stays Standby (preemption off). Either way one successor.
    /// </summary>
    private bool SuccessorLate(in MemberView self, ReadOnlySpan<MemberView> peers, long now, bool held, out byte late)
    {
        late = 0;
        if (!_sawActive || held)
        {
            // A forming cluster (no Active seen yet: the higher-ranked Standby goes first, as it always did), or this
            // member may not decide now (a stall, a rejoin): the window counts only while this member could take over,
            // so when both come out of the same hold the higher-ranked one decides first.
            _roleFreeSinceTimestamp = 0;
            return false;
        }

        foreach (var p in peers)
        {
            if (p.Alive && p.HoldsRole)
            {
                _roleFreeSinceTimestamp = 0; // someone holds the role: nothing to wait for
                return false;
            }

            if (p.Alive && p.State == MemberState.Standby && p.Outranks(self) && (late == 0 || p.Outranks(peers[IndexOf(peers, late)])))
            {
                late = p.Id;
            }
        }

        if (late == 0)
        {
            return false; // waiting, if at all, for a member starting (a forming cluster): not a successor's delay
        }

        if (_roleFreeSinceTimestamp == 0)
        {
            _roleFreeSinceTimestamp = now;
            return false;
        }

        return Elapsed(_roleFreeSinceTimestamp) >= SuccessorWindowMs();
    }

    private static int IndexOf(ReadOnlySpan<MemberView> peers, byte id)
    {
        for (int i = 0; i < peers.Length; i++)
        {
            if (peers[i].Id == id)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// How long a Standby waits for a higher-ranked Standby to announce Promoting once it sees the role free: the two see
    /// the death a tick apart at most on a clean network, and the announcement goes out at once and takes a one-way delay
    /// (four ack intervals, plus SRTT + 4 RTTVAR of the slowest live peer's link). At most half a heartbeat interval: a
    /// successor that has not decided by then is slow (a jittery or lossy link stretched its view of the Active) or dead,
    /// and the failover is not to wait a second dead interval for it.
    /// </summary>
    private double SuccessorWindowMs()
    {
        double ack = _engine.Options.AckInterval.TotalMilliseconds;
        double window = _engine.SlowestPeerRetryMs() + (4 * ack);
        return Math.Min(window, Math.Max(4 * ack, _engine.Options.HeartbeatInterval.TotalMilliseconds / 2));
    }

    /// <summary>The peers with every live Standby of higher rank than <paramref name="self"/> counted as not alive (it did not take over in time).</summary>
    private static MemberView[] WithoutHigherStandbys(in MemberView self, ReadOnlySpan<MemberView> peers)
    {
        var masked = peers.ToArray();
        for (int i = 0; i < masked.Length; i++)
        {
            if (masked[i].Alive && masked[i].State == MemberState.Standby && masked[i].Outranks(self))
            {
                masked[i] = masked[i] with { Alive = false };
            }
        }

        return masked;
    }

    /// <summary>The longest a split-brain loser stays Active handing its table over: ten dead intervals.</summary>
    private TimeSpan HandoverLimit => _engine.Options.DeadInterval * 10;

    private void CancelHandover()
    {
        if (_handoverTo != 0)
        {
            _handoverTo = 0;
            _engine.EndHandover();
        }
    }

    /// <summary>The winning side of a split brain logs each lower-ranked Active peer once per episode (it steps down).</summary>
    private void NoteLowerActivePeers(ReadOnlySpan<MemberView> peers)
    {
        foreach (var p in peers)
        {
            bool active = p.Alive && p.State == MemberState.Active;
            if (active && _splitBrainPeers.Add(p.Id))
            {
                Log.SplitBrainWinner(_logger, _engine.MemberId, p.Id);
            }
            else if (!active)
            {
                _splitBrainPeers.Remove(p.Id);
            }
        }
    }

    private void Publish(MemberState state, string? reason = null)
    {
        if (state == MemberState.Standby && _adminDown)
        {
            state = MemberState.Maintenance; // administratively down: synchronized, but out of the elections
        }

        _sawActive |= state == MemberState.Active;
        var old = State;
        if (old != state)
        {
            _roleFreeSinceTimestamp = 0; // counted again from the next look as a Standby
        }

        State = state;
        // A member in Maintenance takes no part in elections, so its priority field carries its named successor.
        _engine.AdvertisedPriority = state == MemberState.Maintenance ? _namedSuccessor : _options.Priority;
        _engine.AdvertisedState = (byte)state;
        _engine.RelaysUnfollowed = state == MemberState.Standby && _options.Mode == ClusterMode.HighAvailability;
        if (old != state)
        {
            LastReason = reason ?? DefaultReason(old, state);
            Log.StateChanged(_logger, _engine.MemberId, old, state);
            StateChanged?.Invoke(old, state);
        }
    }

    /// <summary>Why the state last changed, for the state hooks (<c>CLUSTERSYNC_REASON</c>); read it in a <see cref="StateChanged"/> handler.</summary>
    public string LastReason { get; private set; } = "starting";

    private string DefaultReason(MemberState from, MemberState to) => (from, to) switch
    {
        (MemberState.Init, MemberState.Syncing) => "listened for one dead interval; pulling a full sync",
        (_, MemberState.Standby) when from is MemberState.Init or MemberState.Syncing => "synchronized",
        (_, MemberState.Maintenance) when _adminDown => "admin down",
        (MemberState.Maintenance, MemberState.Standby) => "admin up",
        _ => $"{from} -> {to}",
    };

    private double Elapsed(long from) => (_time.GetTimestamp() - from) * 1000.0 / _time.TimestampFrequency;

    private static partial class Log
    {
        [LoggerMessage(1301, LogLevel.Information, "Member {Member}: {From} -> {To}")]
        public static partial void StateChanged(ILogger logger, byte member, MemberState from, MemberState to);

        [LoggerMessage(1302, LogLevel.Warning, "Member {Member} becomes Active ({Reason}): committed {Connections} connections into the {Sink} data plane in {Milliseconds:F1} ms (snapshot {SnapshotMs:F1} ms, promoting for {PromotingMs:F1} ms)")]
        public static partial void Promoted(ILogger logger, byte member, string reason, int connections, string sink, double milliseconds, double snapshotMs, double promotingMs);

        [LoggerMessage(1303, LogLevel.Warning, "Member {Member} saw another Active member of higher rank (split brain): stepping down to Standby")]
        public static partial void SplitBrain(ILogger logger, byte member);

        [LoggerMessage(1306, LogLevel.Warning, "Member {Member} saw member {Peer} also Active (split brain): this member outranks it and stays Active; it steps down")]
        public static partial void SplitBrainWinner(ILogger logger, byte member, byte peer);

        [LoggerMessage(1307, LogLevel.Warning, "Member {Member} saw member {Peer} Active and of higher rank (split brain): handing its table over before stepping down")]
        public static partial void HandingOver(ILogger logger, byte member, byte peer);

        [LoggerMessage(1308, LogLevel.Error, "Member {Member}: member {Peer} did not acknowledge the handover within {Milliseconds:F0} ms; stepping down without it (connections it lacks are lost)")]
        public static partial void HandoverIncomplete(ILogger logger, byte member, byte peer, double milliseconds);

        [LoggerMessage(1309, LogLevel.Information, "Member {Member}: the Active is now member {Peer} (was {Previous}); re-sending this replica to it")]
        public static partial void HandingOverToNewActive(ILogger logger, byte member, byte previous, byte peer);

        [LoggerMessage(1304, LogLevel.Warning, "Member {Member}: control tick {Milliseconds:F0} ms late (this process stalled); no takeover for one dead interval")]
        public static partial void LocalStall(ILogger logger, byte member, double milliseconds);
    }
}
