namespace ClusterSync.Membership;

/// <summary>What a joining member does next.</summary>
public enum JoinStep : byte
{
    /// <summary>Nothing to pull from yet: look again shortly.</summary>
    Wait,
    /// <summary>Pull a full sync from <see cref="JoinDecision.Source"/>; on failure ask again.</summary>
    Pull,
    /// <summary>No synchronized member exists: start synchronized (the cluster's first member).</summary>
    FirstMember,
}

/// <summary>The planner's answer and why (for the log).</summary>
public readonly record struct JoinDecision(JoinStep Step, byte Source, string Reason, MemberState SourceState = MemberState.Init);

/// <summary>
/// Decides, from what the heartbeats show over time, where a joining (or restarted) member takes its full sync from,
/// and whether it may start synchronized as the cluster's first member. A join is never skipped on a brief view:
/// <list type="bullet">
/// <item>A live Active is the source. With only Standbys alive the member waits up to <c>activeWait</c> for an Active
/// (a failover under way) before it pulls from the best-ranked Standby.</item>
/// <item>Once a synchronized peer (Standby or Active) has been seen alive, the member starts as first member only
/// after no synchronized peer has been alive for <c>survivorAfter</c> (the rest of the cluster is gone, not just
/// briefly unheard, busy or slow): until then it waits and pulls as soon as one is back.</item>
/// <item>A cluster that is forming (every configured peer alive now, all starting, none synchronized) starts from
/// one member: the highest-ranked of them, after <c>firstMemberSilence</c>; the others pull from it once it is Standby.
/// The same holds when synchronized peers were seen but every configured member is now alive and starting (they all
/// restarted: no replica is left to pull).</item>
/// <item>A configured peer that is not heard may be synchronized and out of reach (a partition, a wrong key, a cut sync
/// link), even if it was heard starting a moment ago: silence is no evidence that the cluster is new. The member starts first only after
/// <c>aloneAfter</c> (default <see cref="DefaultAloneAfter"/>, 10 s) without hearing any synchronized peer; until then it waits,
/// and pulls as soon as one is heard. A member configured with no peers starts first after <c>firstMemberSilence</c>.</item>
/// </list>
/// A demanding operator's expectation: a restarted member never serves (or becomes Standby, and so a takeover
/// candidate) with a partial table while a synchronized peer may exist; only a whole cluster seen starting together,
/// or a long, explicit time-out, lets a member start synchronized without a full sync.
/// </summary>
public sealed class JoinPlanner
{
    private readonly byte _self;
    private readonly byte _priority;
    private readonly TimeProvider _time;
    private readonly long _firstMemberSilenceMs;
    private readonly long _survivorAfterMs;
    private readonly long _activeWaitMs;
    private readonly long _aloneAfterMs;
    private long _startTimestamp;
    private long _lastSynchronizedPeerTimestamp;
    private long _standbyOnlySinceTimestamp;
    private bool _sawSynchronizedPeer;

    public JoinPlanner(byte self, byte priority, TimeSpan deadInterval, TimeProvider time, TimeSpan? firstMemberSilence = null,
        TimeSpan? survivorAfter = null, TimeSpan? activeWait = null, TimeSpan? aloneAfter = null)
    {
        _self = self;
        _priority = priority;
        _time = time;
        _firstMemberSilenceMs = (long)(firstMemberSilence ?? deadInterval * 3).TotalMilliseconds;
        _survivorAfterMs = (long)(survivorAfter ?? TimeSpan.FromSeconds(30)).TotalMilliseconds;
        _activeWaitMs = (long)(activeWait ?? deadInterval * 2).TotalMilliseconds;
        _aloneAfterMs = (long)(aloneAfter ?? DefaultAloneAfter).TotalMilliseconds;
        _startTimestamp = time.GetTimestamp(); // listening since the planner was made
    }

    /// <summary>
    /// How long a member that hears none of its configured peers waits before it starts as the first member (10 s):
    /// longer than any brief view (a restart, a lost heartbeat, a short partition), short enough that a member whose
    /// peers are really gone serves without an operator. A partition longer than this with a restart inside it still
    /// gives two clusters (there is no quorum in a two-member HA pair); the Active that wins when it heals keeps its table.
    /// </summary>
    public static readonly TimeSpan DefaultAloneAfter = TimeSpan.FromSeconds(10);

    /// <summary>A synchronized peer (Standby or Active) has been seen alive since the planner started.</summary>
    public bool SawSynchronizedPeer => _sawSynchronizedPeer;

    /// <summary>The next step, given the peers as the heartbeats show them now.</summary>
    public JoinDecision Next(ReadOnlySpan<MemberView> peers)
    {
        long now = _time.GetTimestamp();

        MemberView? active = null;
        MemberView? standby = null;
        bool forming = false;
        var self = new MemberView(_self, _priority, MemberState.Syncing, true);
        bool outranksForming = true;
        bool allAlive = true;
        int startingPeers = 0;
        foreach (var p in peers)
        {
            if (!p.Alive)
            {
                allAlive = false;
                continue;
            }

            if (p.State == MemberState.Active)
            {
                active = active is { } a && a.Outranks(p) ? a : p;
            }
            else if (p.State is MemberState.Standby or MemberState.Promoting)
            {
                // A Promoting member holds a complete replica and is about to be Active: a failover under way.
                standby = standby is { } s && s.Outranks(p) ? s : p;
            }
            else if (p.State is MemberState.Init or MemberState.Syncing)
            {
                forming = true;
                startingPeers++;
                outranksForming &= self.Outranks(p);
            }
        }

        if (active is not null || standby is not null)
        {
            _sawSynchronizedPeer = true;
            _lastSynchronizedPeerTimestamp = now;
        }

        if (active is { } from)
        {
            _standbyOnlySinceTimestamp = 0;
            return new JoinDecision(JoinStep.Pull, from.Id, "the Active", MemberState.Active);
        }

        if (standby is { } best)
        {
            if (_standbyOnlySinceTimestamp == 0)
            {
                _standbyOnlySinceTimestamp = now;
            }

            return Ms(_standbyOnlySinceTimestamp, now) >= _activeWaitMs
                ? new JoinDecision(JoinStep.Pull, best.Id, "no Active: the best-ranked Standby", MemberState.Standby)
                : new JoinDecision(JoinStep.Wait, 0, "Standbys alive but no Active yet (a failover under way?): waiting for it");
        }

        _standbyOnlySinceTimestamp = 0;
        long listening = Ms(_startTimestamp, now);
        if (_sawSynchronizedPeer && startingPeers == peers.Length && Ms(_lastSynchronizedPeerTimestamp, now) >= _firstMemberSilenceMs)
        {
            // Every configured member is alive and starting: the synchronized ones seen earlier restarted too, nobody
            // holds a replica any more (seed 709: every member restarted, all Syncing, each waiting for the others).
            return outranksForming
                ? new JoinDecision(JoinStep.FirstMember, 0, "every member restarted: the cluster forms again and this member ranks highest")
                : new JoinDecision(JoinStep.Wait, 0, "every member restarted: a higher-ranked member starts first");
        }

        if (_sawSynchronizedPeer)
        {
            return Ms(_lastSynchronizedPeerTimestamp, now) >= _survivorAfterMs
                ? new JoinDecision(JoinStep.FirstMember, 0, $"no synchronized peer alive for {_survivorAfterMs} ms")
                : new JoinDecision(JoinStep.Wait, 0, "synchronized peers were seen: waiting for one to be reachable");
        }

        if (listening < _firstMemberSilenceMs)
        {
            return new JoinDecision(JoinStep.Wait, 0, "listening for synchronized peers");
        }

        if (!allAlive && listening < _aloneAfterMs)
        {
            return new JoinDecision(JoinStep.Wait, 0, "a configured peer is not heard (it may be synchronized and out of reach): waiting for it");
        }

        if (forming && !outranksForming)
        {
            return new JoinDecision(JoinStep.Wait, 0, "the cluster is forming: a higher-ranked member starts first");
        }

        return new JoinDecision(JoinStep.FirstMember, 0, forming ? "the cluster is forming and this member ranks highest"
            : peers.IsEmpty ? "no peer configured" : allAlive ? "every configured peer is alive and none is synchronized"
            : $"no synchronized peer heard for {_aloneAfterMs} ms");
    }

    private long Ms(long from, long to) => (long)((to - from) * 1000.0 / _time.TimestampFrequency);
}
