namespace ClusterSync.Simulation.Tests;

/// <summary>
/// Seeds on which the simulator found the bugs of issue 14 (and two clock findings) on the code of branch main at the
/// time branch sim was cut. Each seed reproduces exactly (<c>clustersync soak --seeds 1 --first-seed N --trace</c>).
/// The fixes are merged (branch rel, then branch sim2 for the clock findings and what the soak found next): every seed
/// here must pass.
/// A fix changes what happens after the fault, so a seed may stop reaching the same situation: keep the seed anyway
/// (a regression must still not break the invariant) and look for fresh seeds with <c>clustersync soak</c>.
/// </summary>
public sealed class KnownBugSeedsTests
{

    /// <summary>
    /// Bug 1. 865: m3 crashes, the Active m1 is isolated, m2 takes over, m3 restarts and joins from m2; after the partition
    /// heals m1 serves again and still holds m3's acked-through (24) from m3's previous life: the restarted m3 acks 0,
    /// the sequences at or below 24 are neither resent nor reported gone, m1's window stays full with a clean link.
    /// 147, 127: the same after a restart that skipped full sync (bug 2).
    /// </summary>
    [Theory]
    [InlineData(865)]
    [InlineData(147)]
    [InlineData(127)]
    public void Run_Bug1Seed_SendWindowNeverWedges(int seed) => AssertNo(seed, Invariants.WedgedWindow);

    /// <summary>Bug 2. 6: m2 restarts while cut off from the Active m1 (46 connections), sees no pullable peer and starts synchronized with an empty table.</summary>
    [Theory]
    [InlineData(6)]
    [InlineData(13)]
    public void Run_Bug2Seed_RestartNeverSkipsFullSync(int seed) => AssertNo(seed, Invariants.JoinSkipped);

    /// <summary>Bug 3. 12: m2 is isolated while the Active destroys connections; their tombstones expire before m2 pulls, the merge keeps them: 135 ghosts.</summary>
    [Theory]
    [InlineData(12)]
    [InlineData(15)]
    [InlineData(23)]
    public void Run_Bug3Seed_NoGhostEntries(int seed) => AssertNo(seed, Invariants.Ghost);

    /// <summary>
    /// Bug 6. 543: m1 restarts; the Active m2 crashes and m3 takes over (2.216 s); m1 joins by full sync from m3, whose
    /// last heartbeat it heard still said Standby (2.301 s), becomes Standby, sees no live Active and takes over (2.309 s);
    /// it outranks m3, which steps down (2.401 s): the restarted member took the Active role with preemption off.
    /// </summary>
    [Theory]
    [InlineData(543)]
    [InlineData(475)]
    [InlineData(36)]
    public void Run_Bug6Seed_RestartedMemberNeverPreempts(int seed) => AssertNo(seed, Invariants.Preempted);

    /// <summary>450: m3's wall clock jumps back 25.5 s and m3 restarts: its epoch is older than its previous life's, peers drop its packets, two Actives remain after healing.</summary>
    [Theory]
    [InlineData(450)]
    public void Run_EpochSeed_RestartAlwaysGetsANewerEpoch(int seed)
    {
        AssertNo(seed, Invariants.EpochRegression);
        AssertNo(seed, Invariants.SingleActive);
    }

    /// <summary>
    /// 119: the Active m2's wall clock steps back 15.5 s; connections it updates afterwards have UpdatedMs &lt; CreatedMs,
    /// which RecordCodec.TryRead refuses: every full sync from m2 fails ("a Records frame did not parse"), m1 stays
    /// Syncing (delta datagrams carrying such a record are dropped as Malformed too). 53: the same with connections
    /// created on an Active whose clock ran 33 s ahead and updated on the next Active.
    /// </summary>
    [Theory]
    [InlineData(119)]
    [InlineData(53)]
    public void Run_ClockSeed_EveryMemberRejoins(int seed) => AssertNo(seed, Invariants.Liveness);

    /// <summary>
    /// Found after the fixes of branch rel (branch sim2): 854: a restarted member heard the Active's data but lost its
    /// heartbeats, took the default state (Init) for a forming cluster and started as first member; 142: it heard a
    /// forming peer that was then cut off and started alone.
    /// </summary>
    [Theory]
    [InlineData(854)]
    [InlineData(142)]
    public void Run_JoinSeed_RestartNeverStartsAsFirstMemberBesideAnActive(int seed) => AssertNo(seed, Invariants.JoinSkipped);

    /// <summary>
    /// 245: a new Active was announced only at the next heartbeat interval; a peer still seeing it Standby took over too.
    /// 955: a member back from a partition promoted itself before it had heard the higher-ranked member.
    /// </summary>
    [Theory]
    [InlineData(245)]
    [InlineData(955)]
    public void Run_HeartbeatSeed_NoSecondTakeover(int seed) => AssertNo(seed, Invariants.Preempted);

    /// <summary>
    /// Anti-entropy: 199 (cutoff in wall-clock time, the Active's clock behind the writers': nothing counted), 385 (a
    /// Standby's ghost named the Standby itself as owner and was left out of its digests), 78 (a Standby held a newer
    /// version, a dead Active's last update, that the new Active never had).
    /// </summary>
    [Theory]
    [InlineData(199)]
    [InlineData(385)]
    [InlineData(78)]
    public void Run_AntiEntropySeed_StandbysConverge(int seed)
    {
        AssertNo(seed, Invariants.Ghost);
        AssertNo(seed, Invariants.Convergence);
    }

    /// <summary>709: every member restarted; all Syncing, each waited 30 s for the synchronized peers it had seen.</summary>
    [Theory]
    [InlineData(709)]
    public void Run_AllRestartedSeed_ClusterFormsAgain(int seed)
    {
        AssertNo(seed, Invariants.SingleActive);
        AssertNo(seed, Invariants.Liveness);
    }

    /// <summary>
    /// Split brain, branch soak14. 199: m2 isolated, m1 (the Active) restarts, m3 and m2 both take over; after healing m3
    /// serves and steps down for the higher-ranked m2 at once, and m2 lacks what m3 and the last deltas of m1 put on the
    /// Standbys. 449: the same under a one-way cut m2→m3 (17 connections). 708: m2 stops hearing the Active m3 (one-way
    /// cut), takes over, m3 steps down although m2 cannot hear it (33 connections). The loser now hands its table over
    /// and steps down once the winner acknowledged it. 23: the handover must not bring back the winner's own connections
    /// (a stale copy of one it destroyed came back on the Active, unannounced, and never reached the Standbys).
    /// </summary>
    [Theory]
    [InlineData(199)]
    [InlineData(449)]
    [InlineData(708)]
    [InlineData(23)]
    public void Run_SplitBrainSeed_WinnerHoldsWhatTheLoserServed(int seed)
    {
        AssertNo(seed, Invariants.FailoverLoss);
        AssertNo(seed, Invariants.Convergence);
        AssertNo(seed, Invariants.Ghost);
    }

    /// <summary>
    /// Branch soak14. 396, 493, 560, 741: a Standby promoted while the serving Active was cut off, missing a delta lost on
    /// its own lossy link that another Standby held; when the old Active died the traffic came to it without that
    /// connection. 671: m2 became Active under a one-way cut m1→m2 and never received m1's changes (174 connections) that
    /// m3 held. A Standby that starts following a different Active now re-sends its replica to it.
    /// </summary>
    [Theory]
    [InlineData(396)]
    [InlineData(493)]
    [InlineData(560)]
    [InlineData(671)]
    [InlineData(741)]
    public void Run_NewActiveSeed_LearnsWhatTheStandbysHeld(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Clocks ahead, branch soak14. 528: m1's wall clock ran 70 s ahead; entries it wrote reached m3 only, m2 (whose clock
    /// never saw those versions) became Active: they stayed above its anti-entropy cutoff on both sides, 21 ghosts for
    /// good. 802: the same with 22 s, and m2's versions counting up just below the ghosts'. A Standby now asks at its own
    /// cutoff and the Active's version clock observes it.
    /// </summary>
    [Theory]
    [InlineData(528)]
    [InlineData(802)]
    public void Run_ClockAheadSeed_NoGhostEntries(int seed) => AssertNo(seed, Invariants.Ghost);

    /// <summary>
    /// Branch soak14, seeds 1001-10000. 1597: the Active m2 (isolated) and m3 both Active; after healing m3 yields to m2
    /// and the restarted m1, which had never heard m2, took over the moment m3 stepped down; m2 then stepped down for
    /// it, preemption off. A Standby now holds any takeover for a dead interval after seeing an Active step down.
    /// </summary>
    [Theory]
    [InlineData(1597)]
    [InlineData(2211)]
    [InlineData(2765)]
    public void Run_YieldSeed_NoTakeoverWhileTheWinnerIsUnheard(int seed) => AssertNo(seed, Invariants.Preempted);

    /// <summary>
    /// Branch soak14. 2350, 6903: a Standby's anti-entropy removed an entry as a ghost (a tombstone at the entry's own
    /// version) that the Active then held live: at an equal version nothing brought it back. 2436, 5369: every member
    /// restarted, the new Active's table (and version clock) stayed empty, its cutoff 0 started no check, and a Standby
    /// kept an earlier life's entries.
    /// </summary>
    [Theory]
    [InlineData(2350)]
    [InlineData(6903)]
    [InlineData(2436)]
    [InlineData(5369)]
    public void Run_RepairSeed_StandbysConverge(int seed)
    {
        AssertNo(seed, Invariants.Convergence);
        AssertNo(seed, Invariants.Ghost);
    }

    /// <summary>
    /// Branch soak14. 3332: the Active m1 restarted within 32 ms; m2, still seeing it Active, pulled from its new life,
    /// which was itself joining: 0 entries, Standby, then it took over without the 42 connections m3 held. 4679: the
    /// same (59). A full-sync server now serves only while its member is Standby or Active (else busy: the joiner retries).
    /// </summary>
    [Theory]
    [InlineData(3332)]
    [InlineData(4679)]
    public void Run_JoinFromJoinerSeed_NoFailoverLoss(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak14b. 3809: a one-way cut m2→m3; m3 (higher-ranked) stopped hearing the Active m2 and took over, m2 heard
    /// m3 Active but could not hand over (m3 did not hear it) and kept serving; m1 heard both, followed m3 and re-sent its
    /// replica once, but what m2 wrote afterwards reached m1 only: when m2 died the traffic went to m3 without 86 of 286
    /// connections m1 held. 3829, 5500, 6993, 9816: the same split brain seen from the side of a Standby. A Standby that
    /// hears a second, lower-ranked Active now relays what it applies from it to the Active it follows.
    /// </summary>
    [Theory]
    [InlineData(3809)]
    [InlineData(3829)]
    [InlineData(5500)]
    [InlineData(6993)]
    [InlineData(9816)]
    public void Run_SideOfSplitBrainSeed_StandbyRelaysTheOtherActive(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak14b: the invariant, not the system. 5274: m2 isolated for 0.30 s (exactly a dead interval); m1 heard no
    /// heartbeat of it for a dead interval and took over at 3.435 s, the instant the link healed; the split brain resolved
    /// by rank (m2 stepped down). 4945: a cut m3→m1 healed 5 ms before m1 took over. 6030: a partition healed 4 ms before m2
    /// took over 3 ms after m3. The invariant looked at the link at the instant of promotion only; it now counts an Active
    /// as preempted only if the link between them dropped nothing for the dead interval before.
    /// </summary>
    [Theory]
    [InlineData(5274)]
    [InlineData(4945)]
    [InlineData(6030)]
    public void Run_PartitionHealingSeed_NotAPreemption(int seed) => AssertNo(seed, Invariants.Preempted);

    /// <summary>
    /// Branch soak14b. 5700: m2, joining while cut off from the Active m1 (one-way cut m1→m2), pulled from the Standby m3;
    /// m1 crashed 4 ms later, m2 (outranking m3) became Standby and took over 5 ms after that, without 4 connections m3 had
    /// received after its snapshot. A joiner that hears no Active but a live Standby now stays Syncing (m3 takes over).
    /// </summary>
    [Theory]
    [InlineData(5700)]
    public void Run_JoinFromStandbySeed_StandbyTakesOver(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak14b. 9919: m1 isolated, but the end of an earlier one-way cut reopened m1→m3: m1 (hearing nobody) became
    /// Active, m3 heard it Active and stayed Standby when the serving m2 died; the traffic went to m1 without 194 of 209
    /// connections m3 held (what m3 re-sent to it never arrived). A Standby's election now counts an Active that has not
    /// acknowledged its data stream for a dead interval, while behind it, as not alive: m3 takes over.
    /// </summary>
    [Theory]
    [InlineData(9919)]
    public void Run_DeafActiveSeed_StandbyTakesOver(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak14b, found after the relay: 4392: a one-way cut m1→m2, m2 Active beside m1; m3 followed m1 but answered
    /// m2's anti-entropy too, and took 29 of m1's connections for ghosts on m2's listing (tombstones at their own version);
    /// when m1 died its handover to m2 sent the tombstones and the traffic went to m2 without them. 3064: fixed by the
    /// same change. A Standby now answers anti-entropy only from the Active it follows (the highest-ranked one it hears).
    /// </summary>
    [Theory]
    [InlineData(4392)]
    [InlineData(3064)]
    public void Run_TwoActivesSeed_StandbyRepairsOnlyFromTheActiveItFollows(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak14b, seeds 10,001-30,000: the split brain seen from the side the other way round: the higher-ranked
    /// Active (followed by the Standbys) died first and the lower-ranked one, which could not hear it, took the traffic
    /// without what it wrote meanwhile (17161: 7 connections; 21717: 40; 22741: 20). The Standby now relays in both
    /// directions.
    /// </summary>
    [Theory]
    [InlineData(17161)]
    [InlineData(21717)]
    [InlineData(22741)]
    public void Run_SideOfSplitBrainSeed_StandbyRelaysBothWays(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Branch soak9, seeds 10,001-30,000 (after the relay). 29294: m3 followed m4 (Active while m1 was isolated); the end
    /// of a one-way cut reopened m1→m3 and m3 applied m1's new connections, but lost heartbeats kept m1 out of its views,
    /// so it never relayed them; m1 died and the traffic went to m4 without 23 of 29 connections m3 held. 11964, 20208:
    /// the same. A Standby now relays whatever it applies from a member other than the Active it follows, seen as
    /// Active or not. 16962, 14729: m2 promoted beside the Active m1 over a lossy link and missed m1's deltas from before
    /// the split brain; the Standbys relayed only what came after. A relay now starts with one re-send of the replica.
    /// </summary>
    [Theory]
    [InlineData(29294)]
    [InlineData(11964)]
    [InlineData(20208)]
    [InlineData(16962)]
    [InlineData(14729)]
    public void Run_UnseenSecondActiveSeed_StandbyRelaysWhatItApplies(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Promoting (issue 13). 1998: m3, a Standby that held the dead Active's connections, abandoned its promotion for
    /// m2, Active on the other side of a split brain, and took m2 as already holding its replica: no re-send, m2 served
    /// without 52 of 75 connections. An abandoned promotion now leaves the followed Active as it was (the replica is
    /// re-sent once when the winner serves).
    /// </summary>
    [Theory]
    [InlineData(1998)]
    public void Run_AbandonedPromotionSeed_StandbyStillResendsItsReplicaToTheWinner(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Promoting (issue 13). 5697: the successor was Promoting (its agreement window stretched by a lossy link) when the
    /// simulator's traffic model gave up waiting for a promotion and sent the traffic to an isolated split-brain Active.
    /// The model now waits for a member that announces Promoting (within a bound).
    /// </summary>
    [Theory]
    [InlineData(5697)]
    public void Run_PromotingSuccessorSeed_TrafficWaitsForThePromotion(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    /// <summary>
    /// Per-link dead intervals (issue 13). 9316: the send window dropped a stalled peer only after its link's stretched
    /// dead interval (up to two configured ones), and the Active's window stayed full for 600 ms on a 39 % lossy link.
    /// Leaving the window uses the configured dead interval again.
    /// </summary>
    [Theory]
    [InlineData(9316)]
    public void Run_LossyLinkSeed_WindowDropsAStalledPeerAfterTheConfiguredDeadInterval(int seed) => AssertNo(seed, Invariants.WedgedWindow);

    /// <summary>
    /// Branch member14. 3467: the Active m3 crashed at 3.540 s; the higher-ranked Standby m2, on a 47 % lossy link, still
    /// heard m3's delayed datagrams 45 ms later and had not seen it dead when it crashed itself (3.838 s); m1 saw m3 dead
    /// at 3.845 s but waited for m2, alive in its view, until m2 too was seen dead (4.095 s, 555 ms after the crash),
    /// while the traffic went to m4, an Active isolated since 2.3 s, without 175 of 186 connections. A Standby now waits
    /// for a higher-ranked Standby only for the successor window (a few ack intervals) once it sees the role free.
    /// </summary>
    [Theory]
    [InlineData(3467)]
    public void Run_SilentHigherRankedStandbySeed_NextRankedTakesOverWithoutWaitingForItsDeath(int seed)
    {
        AssertNo(seed, Invariants.FailoverLoss);
        AssertNo(seed, Invariants.SingleActive);
    }

    /// <summary>
    /// Branch soak15. 10244: the serving Active m2 crashed; the only Standby, m3, saw it dead 570 ms later instead of 300,
    /// and at 400 ms the traffic went to m1, an Active isolated since 2.9 s, without 57 of 191 connections. m3's dead
    /// interval toward m2 was 600 ms: its only round-trip sample toward m2 (277 ms, RTTVAR = R/2 = 138 ms) came from
    /// re-sending its replica to m2 over a 35 % lossy link at 2.93 s; the link had been clean for 0.5 s, but a Standby sends
    /// its Active nothing, so no sample came to replace it. The jitter allowance now counts only an estimate sampled within
    /// a dead interval before the peer was last heard (m3 promotes 300 ms after the crash).
    /// </summary>
    [Theory]
    [InlineData(10244)]
    public void Run_StaleJitterEstimateSeed_OnlyStandbyTakesOverAfterTheConfiguredDeadInterval(int seed) => AssertNo(seed, Invariants.FailoverLoss);

    private static void AssertNo(int seed, string invariant)
    {
        var result = Simulator.Run(seed);
        var broken = result.Violations.Where(v => v.Invariant == invariant).ToList();
        Assert.True(broken.Count == 0, $"seed {seed}: {string.Join("; ", broken)}");
    }
}
