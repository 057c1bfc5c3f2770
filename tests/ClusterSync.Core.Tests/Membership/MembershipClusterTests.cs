namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// The controller's paths that need more than one real peer (Membership/README.md: "Split brain", "Stalls"): the
/// split-brain handover and its limit, a Standby re-sending its replica to a new Active, the relay of a Standby between
/// two Actives, an Active that does not hear a Standby, the holds after a stall and after an Active stepped down. Members
/// are real stepped engines on one fake clock (<see cref="SteppedCluster"/>).
/// </summary>
public sealed class MembershipClusterTests
{
    private static ConnectionKey Conn(int i) => EngineKit.Tcp(443, sourcePort: (ushort)(41000 + i));

    private static ConnectionKey[] Serve(Member member, int first, int count)
    {
        var keys = Enumerable.Range(first, count).Select(Conn).ToArray();
        foreach (var k in keys)
        {
            member.Engine.Submit(EngineKit.New(k));
        }

        member.Engine.StepSender();
        return keys;
    }

    /// <summary>Live replicas of <paramref name="owner"/>'s connections <paramref name="first"/>.. (as a full sync brings them), to apply to a member's table.</summary>
    private static ConnectionEvent[] Replicas(SteppedCluster c, int first, int count, byte owner) => Enumerable.Range(first, count).Select(i =>
    {
        var e = EngineKit.Update(Conn(i), ProtocolState.TcpEstablished);
        e.Entry.Owner = owner;
        e.Entry.Version = 1000 + (ulong)i;
        e.Entry.CreatedMs = e.Entry.UpdatedMs = c.Time.GetUtcNow().ToUnixTimeMilliseconds();
        return e;
    }).ToArray();

    private static int Held(Member member, IEnumerable<ConnectionKey> keys) => keys.Count(k => member.Engine.TryGetEntry(k, out _));

    [Fact]
    public void SplitBrainHealed_LowerRankedActiveStepsDownOnlyOnceTheWinnerHoldsItsConnections()
    {
        using var c = new SteppedCluster([(1, 200), (2, 100)]);
        c.Isolate(1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active, Dead * 3, "both Active");
        var served = Serve(c[2], 0, 10); // served by member 2 while split: member 1 never got them
        var ofGone = Replicas(c, 100, 10, owner: 7); // of a member gone meanwhile: only a handover sends them on
        Assert.Equal(ofGone.Length, c[2].Engine.ApplySnapshot(ofGone));
        served = [.. served, .. ofGone.Select(e => e.Key)];
        c.Run(Tick * 4);
        Assert.Equal(0, Held(c[1], served));
        int heldAtStepDown = -1;
        c[2].Controller.StateChanged += (_, to) => heldAtStepDown = to == MemberState.Standby ? Held(c[1], served) : heldAtStepDown;

        c.HealAll();
        int steps = c.RunUntil(() => c[2].State == MemberState.Standby, Dead * 10, "member 2 steps down");

        Assert.Equal(served.Length, heldAtStepDown);
        Assert.True(steps * Tick < Dead * 2, $"took {steps * Tick}: the winner acknowledged long before the limit");
        Assert.Equal(["Member 2 saw member 1 Active and of higher rank (split brain): handing its table over before stepping down"], c[2].Logger.Of(1307));
        Assert.Empty(c[2].Logger.Of(1308));
        Assert.Single(c[2].Logger.Of(1303));
        Assert.Equal(1, c[2].Controller.SplitBrainsResolved);
        Assert.Equal(MemberState.Active, c[1].State);
        Assert.Equal(0, c[1].Controller.SplitBrainsResolved);
        Assert.Equal(["Member 1 saw member 2 also Active (split brain): this member outranks it and stays Active; it steps down"], c[1].Logger.Of(1306));

        c.Run(Dead * 2); // member 2 follows member 1, which holds its table already: no re-send
        Assert.Empty(c[2].Logger.Of(1309));
        Assert.Equal(MemberState.Standby, c[2].State);

        // A second partition: member 2 takes over again, and hands over again when it heals.
        c.Isolate(1);
        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 Active again");
        var more = Serve(c[2], 20, 5);
        c.HealAll();
        c.RunUntil(() => c[2].State == MemberState.Standby, Dead * 2, "member 2 steps down again");
        Assert.Equal(2, c[2].Logger.Of(1307).Count);
        Assert.Empty(c[2].Logger.Of(1308));
        Assert.Equal(more.Length, Held(c[1], more));
        Assert.Equal(2, c[2].Controller.SplitBrainsResolved);
    }

    [Fact]
    public void SplitBrain_WinnerGoneMidHandoverThenBack_HandoverStartsAgainWithAFullLimit()
    {
        using var c = new SteppedCluster([(1, 200), (2, 100)]);
        c.Isolate(1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active, Dead * 3, "both Active");
        Serve(c[2], 0, 3);
        c.Heal(1, 2); // member 2 hears member 1; member 1 never hears member 2 (nor acknowledges it)
        c.RunUntil(() => c[2].Logger.Of(1307).Count == 1, Dead, "handover begun");
        c.Run(Dead * 2);
        Assert.Equal(MemberState.Active, c[2].State);

        c.Cut(1, 2); // the winner is gone again: member 2 keeps the role and ends the handover
        c.Run(Dead + (Tick * 30));
        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Single(c[2].Logger.Of(1307));

        c.Heal(1, 2);
        c.RunUntil(() => c[2].Logger.Of(1307).Count == 2, Dead, "handover begun again");
        int steps = c.RunUntil(() => c[2].State == MemberState.Standby, Dead * 12, "member 2 steps down");

        Assert.InRange(steps * Tick, (Dead * 10) - (Tick * 2), (Dead * 10) + (Tick * 2)); // the limit counts from the second start
        Assert.Single(c[2].Logger.Of(1308));
        Assert.StartsWith("Member 2: member 1 did not acknowledge the handover within 3000 ms", c[2].Logger.Of(1308)[0], StringComparison.Ordinal);
        Assert.Equal(1, c[2].Controller.SplitBrainsResolved);
    }

    [Fact]
    public void Failover_StandbyFollowingTheNewActive_ReSendsWhatOnlyItReceived()
    {
        using var c = new SteppedCluster([(1, 200), (2, 150), (3, 100)]);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby && c[3].State == MemberState.Standby, Dead * 3, "formed");
        var all = Serve(c[1], 0, 5);
        c.Run(Tick * 4);
        Assert.Equal(5, Held(c[2], all));
        Assert.Equal(5, Held(c[3], all));
        Assert.Empty(c[3].Logger.Of(1309)); // the first Active followed: nothing to re-send

        c.Cut(1, 2);
        var late = Serve(c[1], 5, 1); // reaches member 3 only
        c.Step();
        Assert.Equal(1, Held(c[3], late));
        Assert.Equal(0, Held(c[2], late));
        c[1].Up = false; // crashes

        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 2, "member 2 takes over");
        // Member 3 may pass it on before it sees member 2 Active (data from a member other than the Active it follows is
        // relayed at once); the re-send to the new Active follows when it does.
        c.RunUntil(() => Held(c[2], late) == 1 && c[3].Logger.Of(1309).Count > 0, Dead, "member 2 holds what only member 3 received");

        Assert.Equal(["Member 3: the Active is now member 2 (was 1); re-sending this replica to it"], c[3].Logger.Of(1309));
        Assert.Empty(c[2].Logger.Of(1309));
        Assert.Equal(MemberState.Standby, c[3].State);
    }

    [Fact]
    public void TwoActivesThatDoNotHearEachOther_StandbyHearingBothRelaysBetweenThemUntilOneStepsDown()
    {
        using var c = new SteppedCluster([(1, 150), (2, 200), (3, 100)]);
        c.Cut(1, 2);
        c.Cut(2, 1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active && c[3].State == MemberState.Standby, Dead * 3, "two Actives");
        c.Run(Tick * 40); // a heartbeat of each reaches member 3
        Assert.True(c[3].Engine.Relaying);
        Assert.False(c[1].Engine.Relaying);

        var ofTwo = Serve(c[2], 0, 4);
        var ofOne = Serve(c[1], 10, 4);
        c.Run(Tick * 4);

        Assert.Equal(4, Held(c[1], ofTwo)); // through member 3 only
        Assert.Equal(4, Held(c[2], ofOne));

        c.HealAll();
        c.RunUntil(() => c[1].State == MemberState.Standby, Dead * 3, "member 1 steps down");
        c.RunUntil(() => !c[3].Engine.Relaying, Dead * 2, "the relay ends");
        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.Empty(c[3].Logger.Of(1309)); // it followed member 2, the higher-ranked, all along
    }

    [Fact]
    public void ThreeActivesHealed_BothLowerRankedHandOverToTheHighestRanked()
    {
        using var c = new SteppedCluster([(1, 150), (2, 200), (3, 100)]);
        c.Isolate(1);
        c.Isolate(2);
        c.Isolate(3);
        c.RunUntil(() => c.Members.All(m => m.State == MemberState.Active), Dead * 3, "three Actives");

        c.HealAll();
        c.RunUntil(() => c[1].State == MemberState.Standby && c[3].State == MemberState.Standby, Dead * 4, "both step down");

        Assert.Equal(["Member 3 saw member 2 Active and of higher rank (split brain): handing its table over before stepping down"], c[3].Logger.Of(1307));
        Assert.Equal(["Member 1 saw member 2 Active and of higher rank (split brain): handing its table over before stepping down"], c[1].Logger.Of(1307));
        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Equal(2, c[2].Logger.Of(1306).Count);
    }

    [Fact]
    public void ThreeActivesThatDoNotHearEachOther_StandbyHearingAllRelays()
    {
        using var c = new SteppedCluster([(1, 200), (2, 150), (3, 120), (4, 100)]);
        foreach (var (a, b) in new (byte, byte)[] { (1, 2), (1, 3), (2, 3) })
        {
            c.Cut(a, b);
            c.Cut(b, a);
        }

        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active && c[3].State == MemberState.Active, Dead * 3, "three Actives");
        c.Run(Tick * 40);

        Assert.True(c[4].Engine.Relaying);
        Assert.Equal(MemberState.Standby, c[4].State);
        var ofThree = Serve(c[3], 0, 2);
        c.Run(Tick * 4);
        Assert.Equal(2, Held(c[1], ofThree));
        Assert.Equal(2, Held(c[2], ofThree));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void StandbyWhoseDataTheActiveNeverAcknowledges_CountsItAsDeadAfterADeadInterval(bool cut)
    {
        using var c = new SteppedCluster([(1, 200), (2, 100)]);
        if (cut)
        {
            c.Cut(2, 1); // member 1 hears nothing of member 2, which hears it
        }

        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby, Dead * 3, "formed");
        c.Run(Dead * 2);
        Assert.Equal(MemberState.Standby, c[2].State); // nothing unacknowledged yet: the Active counts as alive

        Serve(c[2], 0, 1);
        if (!cut)
        {
            c.Run(Dead * 3);
            Assert.Equal(MemberState.Standby, c[2].State); // acknowledged: it follows the Active
            return;
        }

        int steps = c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 takes over");

        Assert.Equal(Dead + Tick, steps * Tick); // no acknowledgement for more than a dead interval
        Assert.Contains("(no live active member)", Assert.Single(c[2].Logger.Of(1302)), StringComparison.Ordinal);
    }

    [Fact]
    public void LowerRankedActiveStepsDownForAnActiveThisStandbyDoesNotHear_TakeoverHeldForOneDeadInterval()
    {
        using var c = new SteppedCluster([(1, 200), (2, 100), (3, 150)], joining: [3]);
        c.Isolate(1);
        c.RunUntil(() => c[2].State == MemberState.Active && c[3].State == MemberState.Syncing, Dead * 3, "member 2 Active");
        c[3].Controller.MarkSynchronized();
        c.RunUntil(() => c[3].State == MemberState.Standby, Dead, "member 3 Standby");
        c.Run(Dead * 2);
        Assert.Equal(MemberState.Active, c[2].State); // preemption off: the higher-ranked Standby leaves it the role
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.Equal(0, c[3].Controller.Failovers);

        DateTimeOffset steppedDown = default;
        c[2].Controller.StateChanged += (_, to) => steppedDown = to == MemberState.Standby ? c.Time.GetUtcNow() : steppedDown;
        c.Heal(1, 2);
        c.Heal(2, 1); // member 2 meets member 1 and steps down for it; member 3 still does not hear member 1
        var views = new MemberView[2];
        c.RunUntil(() => c[3].Engine.GetPeerViews(views) == 2 && views[1].State == MemberState.Standby, Dead * 6, "member 3 hears member 2 Standby");
        var heard = c.Time.GetUtcNow();
        c.RunUntil(() => c[3].State == MemberState.Promoting, Dead * 2, "member 3 takes over");
        var decided = c.Time.GetUtcNow();
        c.RunUntil(() => c[3].State == MemberState.Active, Dead, "member 3 Active");

        Assert.NotEqual(default, steppedDown);
        Assert.InRange(heard - steppedDown, TimeSpan.Zero, TimeSpan.FromMilliseconds(105)); // with its next heartbeat
        Assert.Equal(Dead + Tick, decided - heard); // held one dead interval from its next tick
    }

    [Fact]
    public void StandbyStalledAfterTheActiveDied_TakesOverOneDeadIntervalAfterTheStall()
    {
        using var c = new SteppedCluster([(1, 200), (2, 100)]);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby, Dead * 3, "formed");
        c[1].Up = false;
        c.Run(Tick * 10);
        c.Time.Advance(TimeSpan.FromMilliseconds(200)); // this process stalls
        c.Step();
        var stall = c.Time.GetUtcNow();
        Assert.Equal(1, c[2].Controller.LocalStalls);

        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 takes over");

        Assert.InRange(c.Time.GetUtcNow() - stall, Dead, Dead + Tick);
    }

    [Fact]
    public void SynchronizedJoinerHearingOnlyStandbys_StaysSyncingUntilItHearsAnActive()
    {
        using var c = new SteppedCluster([(1, 150), (2, 100), (3, 120), (4, 200)], joining: [4]);
        c.Cut(1, 4);
        c.Cut(4, 1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby && c[3].State == MemberState.Standby && c[4].State == MemberState.Syncing, Dead * 3, "formed");
        c[4].Controller.MarkSynchronized();
        c.Run(Dead * 2);
        Assert.Equal(MemberState.Syncing, c[4].State); // it would outrank the Standbys that hold what it lacks

        c.Heal(1, 4);
        c.RunUntil(() => c[4].State == MemberState.Standby, Dead, "member 4 Standby");
        c.Run(Dead * 2);
        Assert.Equal(MemberState.Standby, c[4].State); // preemption off
        Assert.Equal(MemberState.Active, c[1].State);
    }

    [Fact]
    public void SynchronizedJoinerHearingOnlyAnotherJoiner_BecomesStandby()
    {
        using var c = new SteppedCluster([(1, 100), (2, 200)], joining: [1, 2]);
        c.RunUntil(() => c[1].State == MemberState.Syncing && c[2].State == MemberState.Syncing, Dead * 2, "both Syncing");
        c[2].Controller.MarkSynchronized();
        c.RunUntil(() => c[2].State != MemberState.Syncing, Dead, "member 2 leaves Syncing");
        Assert.Equal(MemberState.Standby, c[2].State);
        Assert.Equal(MemberState.Syncing, c[1].State);
    }

    [Fact]
    public void SynchronizedJoinerHearingOnlyAStandby_StandbyOnceThatStandbyIsGone()
    {
        using var c = new SteppedCluster([(1, 150), (2, 100), (3, 200)], joining: [3]);
        c.Cut(1, 3);
        c.Cut(3, 1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby && c[3].State == MemberState.Syncing, Dead * 3, "formed");
        c[3].Controller.MarkSynchronized();
        c.Run(Dead);
        Assert.Equal(MemberState.Syncing, c[3].State);

        c[2].Up = false;
        c.RunUntil(() => c[3].State != MemberState.Syncing, Dead * 2, "member 3 leaves Syncing");
        Assert.Equal(MemberState.Standby, c[3].State);
    }

    [Fact]
    public void LoadSharing_SynchronizedJoinerHearingOnlyAStandby_BecomesActive()
    {
        using var c = new SteppedCluster([(1, 100), (2, 150)], joining: [2], mode: ClusterMode.LoadSharing);
        c[1].Controller.Dispose();
        c[1].Engine.AdvertisedState = (byte)MemberState.Standby; // a live Standby, and no Active
        c.RunUntil(() => c[2].State == MemberState.Syncing, Dead * 2, "member 2 Syncing");
        c[2].Controller.MarkSynchronized();
        c.RunUntil(() => c[2].State == MemberState.Active, Dead, "member 2 Active");
        Assert.Equal([2], c[2].Controller.Owners);
    }

    [Fact]
    public void LoadSharing_PeerSilentWhileThisMemberWasStalled_ItsConnectionsMoveOnlyOneDeadIntervalAfterTheStall()
    {
        using var c = new SteppedCluster([(1, 100), (2, 100)], mode: ClusterMode.LoadSharing);
        c.RunUntil(() => c[1].Controller.Owners.SequenceEqual(new byte[] { 1, 2 }), Dead * 3, "both own");
        long changes = c[1].Controller.OwnershipChanges;
        c[2].Up = false;
        c.Run(Tick * 10);
        c.Time.Advance(TimeSpan.FromMilliseconds(400)); // this process stalls: member 2 was last heard over a dead interval ago
        c.Step();
        var stall = c.Time.GetUtcNow();
        Assert.Equal(1, c[1].Controller.LocalStalls);
        Assert.Equal([1, 2], c[1].Controller.Owners);

        c.RunUntil(() => c[1].Controller.Owners.Length == 1, Dead * 2, "member 2's share moves");

        Assert.InRange(c.Time.GetUtcNow() - stall, Dead, Dead + Tick);
        Assert.Equal(changes + 1, c[1].Controller.OwnershipChanges);
        Assert.Equal([1], c[1].Controller.Owners);
    }

    [Fact]
    public void HigherRankedStandbyBesideTheActive_LowerActiveHandsOverToTheActiveAndStandbysFollowIt()
    {
        using var c = new SteppedCluster([(1, 200), (2, 150), (3, 100)], joining: [1]);
        c.Isolate(3);
        c.RunUntil(() => c[2].State == MemberState.Active && c[1].State == MemberState.Syncing && c[3].State == MemberState.Active, Dead * 3, "formed");
        c[1].Controller.MarkSynchronized();
        c.RunUntil(() => c[1].State == MemberState.Standby, Dead, "member 1 Standby");

        c.HealAll(); // member 3 hears member 1 (a Standby, the highest-ranked) and member 2 (the Active)
        c.RunUntil(() => c[3].State == MemberState.Standby, Dead * 2, "member 3 steps down");
        Assert.Equal(["Member 3 saw member 2 Active and of higher rank (split brain): handing its table over before stepping down"], c[3].Logger.Of(1307));
        c.RunUntil(() => !c[1].Engine.Relaying, Dead, "member 1's relay ends");
        c.Run(Dead);
        Assert.False(c[3].Engine.Relaying); // one Active: nothing to relay
        Assert.Empty(c[3].Logger.Of(1309));
        Assert.Empty(c[1].Logger.Of(1309));

        c[2].Up = false;
        c.RunUntil(() => c[1].State == MemberState.Active, Dead * 2, "member 1 takes over");
        c.Run(Tick * 40);
        Assert.Equal(["Member 3: the Active is now member 1 (was 2); re-sending this replica to it"], c[3].Logger.Of(1309));
        Assert.Equal(MemberState.Standby, c[3].State);
    }

    [Fact]
    public void RelayingStandbyThatNeitherActiveHears_TakesOverAndStopsRelaying()
    {
        using var c = new SteppedCluster([(1, 200), (2, 150), (3, 100)]);
        c.Cut(1, 2);
        c.Cut(2, 1);
        c.Cut(3, 1);
        c.Cut(3, 2);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active && c[3].State == MemberState.Standby, Dead * 3, "two Actives");
        c.Run(Tick * 40);
        Assert.True(c[3].Engine.Relaying);

        Serve(c[2], 0, 2); // member 3 relays them to members 1 and 2, which never acknowledge it
        c.RunUntil(() => c[3].State == MemberState.Active, Dead * 2, "member 3 takes over");

        Assert.False(c[3].Engine.Relaying);
        Assert.Contains("(no live active member)", Assert.Single(c[3].Logger.Of(1302)), StringComparison.Ordinal);
    }

    /// <summary>
    /// Members 1, 2, 3 (send window 16, one round of latency); member 3 alone holds 900 replicas of member 1's
    /// connections. Member 1 dies, member 2 takes over, member 3 starts re-sending its replica to it: returns the
    /// cluster and those connections with the re-send under way (more queued than one send window).
    /// </summary>
    private static (SteppedCluster Cluster, ConnectionKey[] OnlyThree) ReSendUnderWay()
    {
        var c = new SteppedCluster([(1, 200), (2, 150), (3, 100)], window: 16);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby && c[3].State == MemberState.Standby, Dead * 3, "formed");
        var onlyThree = Replicas(c, 0, 900, owner: 1);
        Assert.Equal(onlyThree.Length, c[3].Engine.ApplySnapshot(onlyThree)); // member 3 holds them (a full sync from member 1), member 2 does not
        c.Run(Dead); // member 3 follows member 1
        c.Latency = true;

        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 2, "member 2 takes over");
        c.RunUntil(() => c[3].Logger.Of(1309).Count == 1, Dead, "member 3 re-sends");
        Assert.True(c[3].Engine.HandoverQueued); // a send window at a time
        return (c, onlyThree.Select(e => e.Key).ToArray());
    }

    [Fact]
    public void Failover_StandbyReSendingMoreThanItsSendWindow_NewActiveGetsAllOfIt()
    {
        var (c, onlyThree) = ReSendUnderWay();
        using var _ = c;

        c.RunUntil(() => Held(c[2], onlyThree) == onlyThree.Length, Dead * 2, "member 2 holds all of member 3's replica");
    }

    [Fact]
    public void ReSendingStandbyPromoted_DropsWhatWasStillQueuedForTheDeadActive()
    {
        var (c, _) = ReSendUnderWay();
        using var _c = c;
        int sentAtPromotion = -1;
        c[3].Controller.StateChanged += (_, to) => sentAtPromotion = to == MemberState.Active ? c[3].Channel.DataSent.Values.Sum() : sentAtPromotion;

        c[2].Up = false; // dies with the re-send still queued
        c.RunUntil(() => c[3].State == MemberState.Active, Dead * 2, "member 3 takes over");
        c.Run(Dead);

        Assert.True(c[3].Engine.HandoverQueued is false);
        Assert.Equal(sentAtPromotion, c[3].Channel.DataSent.Values.Sum()); // the rest of the replica is nobody's to receive
    }

    [Fact]
    public void SplitBrainWinnerDiesMidHandover_LoserKeepsTheRoleAndDropsWhatWasStillQueuedForIt()
    {
        using var c = new SteppedCluster([(1, 200), (2, 100)], window: 16);
        c.Isolate(1);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Active, Dead * 3, "both Active");
        var ofGone = Replicas(c, 0, 900, owner: 7);
        Assert.Equal(ofGone.Length, c[2].Engine.ApplySnapshot(ofGone));
        c.Latency = true;
        c.HealAll();
        c.RunUntil(() => c[2].Logger.Of(1307).Count == 1, Dead, "handover begun");
        c.Step();
        Assert.True(c[2].Engine.HandoverQueued);

        c[1].Up = false;
        // Until member 2 sees member 1 dead (its link's dead interval: the configured one plus the link's jitter) the
        // handover goes on, as it must for a winner that is only slow; from then on nothing more is sent.
        c.RunUntil(() => !c[2].Engine.GetPeerStatus().Single(p => p.MemberId == 1).Live, Dead * 3, "member 1 seen dead");
        c.Step();
        int sent = c[2].Channel.DataSent.Values.Sum();
        c.Run(Dead * 2);

        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Equal(0, c[2].Controller.SplitBrainsResolved);
        Assert.Empty(c[2].Logger.Of(1308));
        Assert.False(c[2].Engine.HandoverQueued);
        Assert.Equal(sent, c[2].Channel.DataSent.Values.Sum()); // the rest of the handover is not sent to anyone
    }
}
