using ClusterSync.Connections;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Membership;

/// <summary>What the last promotion of this member took (Unix ms on this machine's clock, durations in ms).</summary>
/// <param name="PromotingUnixMs">When it decided to take over and announced Promoting.</param>
/// <param name="CommitStartedUnixMs">When the first connection was handed to the data plane (the commit began).</param>
/// <param name="CommitFinishedUnixMs">When the last was (the sink's commit returned): this member then reports Active.</param>
/// <param name="SnapshotMs">Copying the replica out of the table (in bounded steps, off the control tick).</param>
/// <param name="CommitMs">The sink's commit.</param>
/// <param name="Connections">Connections committed.</param>
public sealed record PromotionReport(double PromotingUnixMs, double CommitStartedUnixMs, double CommitFinishedUnixMs, double SnapshotMs, double CommitMs, int Connections);

/// <summary>
/// Promotion off the control tick. A Standby that wins the election publishes <see cref="MemberState.Promoting"/> at once
/// (the next heartbeat says so); the replica is copied out of the table in bounded steps and committed into the sink by
/// <see cref="PromotionRunner"/> (a thread of its own in a node), and the control tick only looks at how far it got:
/// <list type="number">
/// <item>abandon, back to Standby, when the election says so (a higher-ranked member is Active or Promoting: two Standbys
/// that decided on different views agree on the higher one before either commits);</item>
/// <item>start the commit once the snapshot is ready and the agreement window has passed (SRTT + 4 RTTVAR of the slowest
/// live peer plus two ack intervals, at most one heartbeat interval: long enough for another member's Promoting
/// announcement, sent the moment it decided, to arrive; none in a two-member cluster) and this member is not catching
/// up after a stall of its own;</item>
/// <item>publish Active once the commit is done (a commit that throws returns the member to Standby, logged).</item>
/// </list>
/// </summary>
public sealed partial class MembershipController
{
    private Promotion? _promotion;
    private PromotionReport? _lastPromotion;
    private long _promotionsAbandoned;

    /// <summary>
    /// Runs a step of a promotion (the snapshot, then the commit) away from the control tick. The default is a new
    /// background thread per step with the system clock (promotions are rare), and inline with a test clock; the
    /// simulator schedules the steps on its own clock.
    /// </summary>
    public Action<Action> PromotionRunner { get; set; }

    /// <summary>The last completed promotion (null before the first).</summary>
    public PromotionReport? LastPromotion => Volatile.Read(ref _lastPromotion);

    /// <summary>When this member announced Promoting, Unix ms (0 while not Promoting).</summary>
    public double PromotingSinceUnixMs => _promotion?.PromotingUnixMs ?? 0;

    /// <summary>Promotions this member abandoned (a higher-ranked member Promoting or Active, or the commit failed).</summary>
    public long PromotionsAbandoned => Interlocked.Read(ref _promotionsAbandoned);

    private void RunOnPromotionThread(Action work)
        => new Thread(() => work()) { IsBackground = true, Name = $"cs-promote-{_engine.MemberId}" }.Start();

    private static void RunInline(Action work) => work();

    /// <summary>
    /// The agreement window in force instead of the one from the links' round trips (tests that look at one instant).
    /// </summary>
    internal TimeSpan? AgreementWindow { get; set; }

    /// <param name="contested">
    /// Taking over a role nobody holds (no live Active): another Standby may have decided the same on another view, so the
    /// commit waits the agreement window. A preemption or a role handed over by name has no rival.
    /// </param>
    private void Promote(ReadOnlySpan<MemberView> peers, string reason, bool contested)
    {
        // How long since the Active we followed was last heard: the failover time as this member sees it. If it
        // died before its first Active heartbeat reached us, the most recently heard dead peer stands in for it.
        long sinceActive = _lastActivePeer == 0 ? -1 : _engine.LastHeardAgoMs(_lastActivePeer);
        if (sinceActive < 0)
        {
            foreach (var p in peers)
            {
                long ago = p.Alive ? -1 : _engine.LastHeardAgoMs(p.Id);
                if (ago >= 0 && (sinceActive < 0 || ago < sinceActive))
                {
                    sinceActive = ago;
                }
            }
        }

        if (_standbyHandover || _engine.Relaying)
        {
            _standbyHandover = false;
            _engine.EndRelay();
            _engine.EndHandover();
        }

        var promotion = new Promotion(reason, sinceActive, _time.GetTimestamp(), UnixMs()) { Contested = contested };
        _promotion = promotion;
        Log.Promoting(_logger, _engine.MemberId, reason);
        Publish(MemberState.Promoting, reason);
        PromotionRunner(() => TakeSnapshot(promotion));
    }

    /// <summary>The control tick's look at a promotion under way (see the type's summary).</summary>
    private void EvaluatePromotion(in MemberView self, ReadOnlySpan<MemberView> peers, bool stalled, long now)
    {
        var p = _promotion!;
        if (p.Failure is { } failure)
        {
            AbandonPromotion($"the commit failed: {failure.GetType().Name}: {failure.Message}");
            _rejoinedUntilTimestamp = now + (long)(_engine.Options.DeadInterval.TotalMilliseconds * _time.TimestampFrequency / 1000.0);
            return;
        }

        // The election as the Standby saw it when it decided (an Active deaf to this member counts as not alive).
        if (HighAvailabilityElection.Decide(self, WithoutDeafActives(peers, now), _options.Preemption, waitForStarting: false) == ElectionOutcome.StepDownSplitBrain)
        {
            byte winner = 0;
            MemberView best = default;
            foreach (var v in peers)
            {
                if (v.Alive && v.HoldsRole && v.Outranks(self) && (winner == 0 || v.Outranks(best)))
                {
                    winner = v.Id;
                    best = v;
                }
            }

            AbandonPromotion($"member {winner} of higher rank is {best.State}");
            return;
        }

        if (!p.CommitLaunched)
        {
            if (Volatile.Read(ref p.Replica) is null || stalled || (p.Contested && Elapsed(p.StartedTimestamp) < AgreementWindowMs()))
            {
                return;
            }

            p.CommitLaunched = true;
            PromotionRunner(() => CommitReplica(p));
        }

        if (Volatile.Read(ref p.Committed))
        {
            FinishPromotion(p);
        }
    }

    /// <summary>
    /// How long a member that decided to take over waits, Promoting, before it commits: long enough for the Promoting
    /// announcement of another member that decided at the same time to reach it (sent at once, it takes a one-way
    /// delay; SRTT + 4 RTTVAR bounds a round trip) and for the control tick to see it (two ack intervals). At most one
    /// heartbeat interval: a lost announcement is repeated by the next heartbeat, and rank resolves what is left.
    /// </summary>
    private double AgreementWindowMs()
    {
        if (AgreementWindow is { } fixedWindow)
        {
            return fixedWindow.TotalMilliseconds;
        }

        if (_engine.Options.PeerMemberIds.Count < 2)
        {
            return 0; // a pair: the only other member is the one this member takes over from, no one to agree with
        }

        double ack = _engine.Options.AckInterval.TotalMilliseconds;
        double window = _engine.SlowestPeerRetryMs() + (2 * ack);
        return Math.Min(window, Math.Max(2 * ack, _engine.Options.HeartbeatInterval.TotalMilliseconds));
    }

    private void TakeSnapshot(Promotion p)
    {
        try
        {
            long started = _time.GetTimestamp();
            var replica = _engine.SnapshotTableInSteps(() => Volatile.Read(ref p.Cancelled));
            ReplicaOrder.MastersFirst(replica); // the contract's order: masters before their related entries
            p.SnapshotMs = ElapsedSince(started);
            Volatile.Write(ref p.Replica, replica);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Volatile.Write(ref p.Failure, ex);
        }
    }

    private void CommitReplica(Promotion p)
    {
        if (Volatile.Read(ref p.Cancelled))
        {
            return;
        }

        try
        {
            var replica = p.Replica!;
            long started = _time.GetTimestamp();
            p.CommitStartedUnixMs = UnixMs();
            _sink.Commit(replica);
            if (_sink is Templates.ITemplateSink templateSink)
            {
                templateSink.CommitTemplates(_engine.SnapshotTemplates()); // the committed state includes live templates (docs/templates.md)
            }

            p.CommitMs = ElapsedSince(started);
            p.CommitFinishedUnixMs = UnixMs();
            Volatile.Write(ref p.Committed, true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Volatile.Write(ref p.Failure, ex);
        }
    }

    private void FinishPromotion(Promotion p)
    {
        _promotion = null;
        int count = p.Replica!.Count;
        LastCommitted = count;
        double promotingMs = Elapsed(p.StartedTimestamp);
        LastFailoverMilliseconds = p.SinceActiveMs >= 0 ? p.SinceActiveMs + promotingMs : promotingMs;
        Volatile.Write(ref _lastPromotion, new PromotionReport(p.PromotingUnixMs, p.CommitStartedUnixMs, p.CommitFinishedUnixMs, p.SnapshotMs, p.CommitMs, count));
        _lastActivePeer = 0;
        Interlocked.Increment(ref _failovers);
        Log.Promoted(_logger, _engine.MemberId, p.Reason, count, _sink.Name, p.CommitMs, p.SnapshotMs, promotingMs);
        Publish(MemberState.Active, p.Reason);
    }

    private void AbandonPromotion(string why)
    {
        CancelPromotion();
        Interlocked.Increment(ref _promotionsAbandoned);
        Log.PromotionAbandoned(_logger, _engine.MemberId, why);
        // The followed Active is left as it was: when the winner serves, this member re-sends its replica to it once
        // (HandOverToNewActive), as after any failover — the winner may lack what only this member received (it may even
        // be the Active of the other side of a split brain, which never had this member's replica: simulator seed 1998).
        Publish(MemberState.Standby, $"promotion abandoned: {why}");
    }

    /// <summary>Stops a promotion under way: its steps see the flag and stop (a commit already inside the sink finishes).</summary>
    private void CancelPromotion()
    {
        if (_promotion is { } p)
        {
            Volatile.Write(ref p.Cancelled, true);
            _promotion = null;
        }
    }

    private double UnixMs() => (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;

    private double ElapsedSince(long from) => (_time.GetTimestamp() - from) * 1000.0 / _time.TimestampFrequency;

    /// <summary>One promotion under way: written by its steps (on the runner) and read by the control tick.</summary>
    private sealed class Promotion(string reason, double sinceActiveMs, long startedTimestamp, double promotingUnixMs)
    {
        public string Reason { get; } = reason;

        public double SinceActiveMs { get; } = sinceActiveMs;

        public long StartedTimestamp { get; } = startedTimestamp;

        public double PromotingUnixMs { get; } = promotingUnixMs;

        public bool CommitLaunched { get; set; } // control tick only

        public bool Contested { get; init; }

        public List<KeyValuePair<ConnectionKey, ConnectionEntry>>? Replica;

        public bool Committed;

        public bool Cancelled;

        public Exception? Failure;

        public double SnapshotMs { get; set; }

        public double CommitMs { get; set; }

        public double CommitStartedUnixMs { get; set; }

        public double CommitFinishedUnixMs { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(1330, LogLevel.Warning, "Member {Member} is Promoting ({Reason}): committing its replica off the control tick")]
        public static partial void Promoting(ILogger logger, byte member, string reason);

        [LoggerMessage(1331, LogLevel.Warning, "Member {Member} abandons its promotion and stays Standby: {Reason}")]
        public static partial void PromotionAbandoned(ILogger logger, byte member, string reason);
    }
}
