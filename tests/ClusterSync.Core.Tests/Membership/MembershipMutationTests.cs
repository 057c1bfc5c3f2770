namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// Tests written against the mutation-testing survivors of Membership (bench/mutation.sh membership): ownership and
/// digest hashes pinned (every member must compute the same owner and digest, across versions), every join decision's
/// reason, and the controller's promotions, step-downs, stall detection, events and logs on a fake clock.
/// </summary>
public sealed class MembershipMutationTests
{

    // ---- Ownership: known answers (computed with an independent splitmix64 written in Python) ----

    public static TheoryData<ulong, ulong, ulong, ulong, ushort, ushort, byte, ushort, ulong, byte[]> OwnershipAnswers() => new()
    {
        // same high halves, low halves differ
        { 0x2001_0DB8_0000_0000UL, 0x1, 0x2001_0DB8_0000_0000UL, 0x2, 40000, 443, 6, 3, 0x95ac6561efe4a2c2UL, [1, 2, 2, 2, 5] },
        // source high half above the destination's: the endpoints are swapped before hashing
        { 0x2001_0DB8_0000_0009UL, 0x1, 0x2001_0DB8_0000_0000UL, 0x2, 40000, 443, 17, 0, 0xbabc251fd72c6602UL, [1, 2, 2, 4, 5] },
        // same address both ends: the ports decide the order
        { 0x2001_0DB8_0000_0000UL, 0x5, 0x2001_0DB8_0000_0000UL, 0x5, 50000, 443, 6, 1, 0xd71f47932aac3878UL, [1, 2, 3, 4, 9] },
    };

    private static readonly byte[][] s_memberSets = [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [2, 5, 9]];

    [Theory]
    [MemberData(nameof(OwnershipAnswers))]
    public void SymmetricHashAndOwnerOf_KnownAnswers_BothDirections(ulong sh, ulong sl, ulong dh, ulong dl, ushort sp, ushort dp, byte protocol, ushort zone,
        ulong hash, byte[] owners)
    {
        var forward = ConnectionKey.IPv6(sh, sl, dh, dl, sp, dp, protocol, zone);
        var reverse = ConnectionKey.IPv6(dh, dl, sh, sl, dp, sp, protocol, zone);

        Assert.Equal(hash, Ownership.SymmetricHash(forward));
        Assert.Equal(hash, Ownership.SymmetricHash(reverse));
        for (int i = 0; i < s_memberSets.Length; i++)
        {
            Assert.Equal(owners[i], Ownership.OwnerOf(forward, s_memberSets[i]));
            Assert.Equal(owners[i], Ownership.OwnerOf(reverse, s_memberSets[i]));
        }
    }

    [Fact]
    public void ReplyKey_IPv4Connection_IsTheIPv4ReverseKey()
    {
        var key = ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 40000, 80, 6, 7);

        var reply = Ownership.ReplyKey(key, key.InverseTuple);

        Assert.False(reply.IsIPv6);
        Assert.Equal(ConnectionKey.IPv4(0x0A00_0002, 0x0A00_0001, 80, 40000, 6, 7), reply);
    }

    // ---- TableDigest ----

    [Fact]
    public void TableDigest_EntryHashFormulaAndAccumulation_Pinned()
    {
        var a = ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 40000, 80, 6);
        var b = ConnectionKey.IPv4(0x0A00_0003, 0x0A00_0002, 40001, 80, 6);
        Assert.Equal(unchecked((a.Hash64(0xD1CE_57ED) * 0x9E37_79B9_7F4A_7C15UL) ^ (7UL * 0xBF58_476D_1CE4_E5B9UL)), TableDigestAccumulator.EntryHash(a, 7));
        Assert.NotEqual(TableDigestAccumulator.EntryHash(a, 7), TableDigestAccumulator.EntryHash(a, 8));

        var d = TableDigestAccumulator.Of([new(a, new ConnectionEntry { Version = 7 }), new(b, new ConnectionEntry { Version = 9 })]);

        Assert.Equal(2, d.Count);
        Assert.Equal(TableDigestAccumulator.EntryHash(a, 7) ^ TableDigestAccumulator.EntryHash(b, 9), d.Xor);
    }

    [Fact]
    public void TableDigest_OfEngine_EqualsDigestOfItsLiveEntries()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        var events = new ConnectionEvent[3];
        for (int i = 0; i < events.Length; i++)
        {
            events[i] = ConnectionEvent.Create(ConnectionEventKind.Update, ConnectionKey.IPv4(0x0A00_0010u + (uint)i, 0x0A00_0002, 40000, 443, 6), ProtocolState.TcpEstablished, 3600, 0);
            events[i].Entry.Owner = 2;
            events[i].Entry.Version = 50 + (ulong)i;
        }

        engine.ApplySnapshot(events);
        var d = TableDigestAccumulator.Of(engine);

        Assert.Equal(3, d.Count);
        Assert.Equal(events.Aggregate(0UL, (x, e) => x ^ TableDigestAccumulator.EntryHash(e.Key, e.Entry.Version)), d.Xor);
    }

    // ---- MemberView, sink ----

    [Fact]
    public void Outranks_ItselfOrAnEqual_False()
    {
        var v = new MemberView(3, 100, MemberState.Standby, true);

        Assert.False(v.Outranks(v));
        Assert.True(new MemberView(2, 100, MemberState.Standby, true).Outranks(v));
        Assert.True(new MemberView(9, 101, MemberState.Standby, true).Outranks(v));
    }

    [Fact]
    public void InMemoryReplicaSink_NameAndCommittedSnapshot()
    {
        var sink = new InMemoryReplicaSink();
        List<KeyValuePair<ConnectionKey, ConnectionEntry>> replica = [new(ConnectionKey.IPv4(1, 2, 3, 4, 6), new ConnectionEntry { Version = 1 })];

        sink.Commit(replica);

        Assert.Equal("in-process", sink.Name);
        Assert.Same(replica, sink.CommittedSnapshot);
        Assert.Equal(1, sink.Commits);
    }

    // ---- JoinPlanner: every decision and its reason ----

    private static MemberView P(byte id, MemberState state, bool alive = true, byte priority = 100) => new(id, priority, state, alive);

    [Fact]
    public void JoinPlanner_ActiveAlive_PullsFromTheActive()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time);

        var d = planner.Next([P(1, MemberState.Active)]);

        Assert.Equal(new JoinDecision(JoinStep.Pull, 1, "the Active", MemberState.Active), d);
        Assert.True(planner.SawSynchronizedPeer);
    }

    [Fact]
    public void JoinPlanner_OnlyAStandby_WaitsTheConfiguredActiveWaitThenPulls()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, activeWait: TimeSpan.FromMilliseconds(50));
        MemberView[] peers = [P(1, MemberState.Standby)];

        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "Standbys alive but no Active yet (a failover under way?): waiting for it"), planner.Next(peers));
        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(new JoinDecision(JoinStep.Pull, 1, "no Active: the best-ranked Standby", MemberState.Standby), planner.Next(peers));
    }

    [Fact]
    public void JoinPlanner_NoPeerConfigured_ListensForTheConfiguredSilenceThenFirstMember()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));

        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "listening for synchronized peers"), planner.Next([]));
        time.Advance(TimeSpan.FromMilliseconds(20));
        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "no peer configured"), planner.Next([]));
    }

    [Fact]
    public void JoinPlanner_ActiveSeenThenUnheard_WaitsTheConfiguredSurvivorTimeThenFirstMember()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, survivorAfter: TimeSpan.FromSeconds(1));
        planner.Next([P(1, MemberState.Active)]);

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "synchronized peers were seen: waiting for one to be reachable"), planner.Next([P(1, MemberState.Down, alive: false)]));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "no synchronized peer alive for 1000 ms"), planner.Next([P(1, MemberState.Down, alive: false)]));
    }

    [Fact]
    public void JoinPlanner_EveryMemberRestarted_HighestRankedStartsOthersWait()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var high = new JoinPlanner(1, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));
        var low = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));
        high.Next([P(2, MemberState.Standby)]);
        low.Next([P(2, MemberState.Standby)]);
        time.Advance(TimeSpan.FromMilliseconds(20));

        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "every member restarted: the cluster forms again and this member ranks highest"), high.Next([P(2, MemberState.Init)]));
        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "every member restarted: a higher-ranked member starts first"), low.Next([P(2, MemberState.Init)]));
    }

    [Fact]
    public void JoinPlanner_ConfiguredPeerNeverHeard_WaitsForTheAloneTimeThenFirstMember()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20), aloneAfter: TimeSpan.FromMilliseconds(500));
        MemberView[] peers = [P(1, MemberState.Init, alive: false)];
        time.Advance(TimeSpan.FromMilliseconds(20));

        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "a configured peer is not heard (it may be synchronized and out of reach): waiting for it"), planner.Next(peers));
        time.Advance(TimeSpan.FromMilliseconds(480));
        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "no synchronized peer heard for 500 ms"), planner.Next(peers));
    }

    [Fact]
    public void JoinPlanner_ClusterForming_ReasonsForTheHighestAndTheOthers()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var high = new JoinPlanner(1, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));
        var low = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));
        time.Advance(TimeSpan.FromMilliseconds(20));

        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "the cluster is forming and this member ranks highest"), high.Next([P(2, MemberState.Syncing)]));
        Assert.Equal(new JoinDecision(JoinStep.Wait, 0, "the cluster is forming: a higher-ranked member starts first"), low.Next([P(2, MemberState.Init)]));
    }

    [Fact]
    public void JoinPlanner_EveryPeerAliveNoneSynchronizedNoneStarting_FirstMember()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var planner = new JoinPlanner(3, 100, TimeSpan.FromMilliseconds(100), time, firstMemberSilence: TimeSpan.FromMilliseconds(20));
        time.Advance(TimeSpan.FromMilliseconds(20));

        Assert.Equal(new JoinDecision(JoinStep.FirstMember, 0, "every configured peer is alive and none is synchronized"), planner.Next([P(1, MemberState.Down)]));
        Assert.False(planner.SawSynchronizedPeer);
    }

    // ---- MembershipController ----

    private static (SyncEngine Peer, CaptureChannel Channel) Peer(byte id, byte self, ClusterKey key, FakeTimeProvider time, MemberState state, byte priority)
    {
        var (peer, channel) = EngineKit.Create(id, self, key, time);
        peer.AdvertisedState = (byte)state;
        peer.AdvertisedPriority = priority;
        return (peer, channel);
    }

    /// <summary>Member <paramref name="self"/> with two peers, on the cluster key and clock given (its sends are only captured).</summary>
    private static SyncEngine EngineWithTwoPeers(byte self, byte[] peers, ClusterKey key, FakeTimeProvider time) => new(new SyncEngineOptions
    {
        MemberId = self,
        PeerMemberIds = peers,
        TableCapacity = 1024,
        ResendBufferDatagrams = 64,
        SendWindowDatagrams = 16,
        AckEveryDatagrams = 8,
        Policy = EngineKit.TestPolicy(),
    }, new CaptureChannel(2), key, time);

    private static void Beat(SyncEngine to, SyncEngine from, CaptureChannel channel)
    {
        from.OnTick();
        var beat = channel.SentTo(0).LastOrDefault(d => d[3] == (byte)MessageType.Heartbeat);
        if (beat is not null)
        {
            to.HandleDatagram(((byte[])beat.Clone()).AsSpan());
        }
    }

    [Fact]
    public void Controller_DrivenByTheEnginesTicks_AndDetachedWhenDisposed()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        var logger = new ListLogger();
        var controller = new MembershipController(engine, new MembershipOptions { Priority = 77 }, new InMemoryReplicaSink(), time, logger);
        Assert.Equal(77, engine.AdvertisedPriority); // advertised from the start, before any tick
        var changes = new List<(MemberState, MemberState)>();
        controller.StateChanged += (from, to) => changes.Add((from, to));

        for (int i = 0; i < 200 && controller.State != MemberState.Active; i++)
        {
            time.Advance(Tick);
            engine.OnTick(); // no direct Evaluate: the engine's tick drives the controller
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.InRange(controller.LastFailoverMilliseconds, 0, 1000); // no peer ever heard: the commit's own time
        // Promoting, then Active on the same tick: a pair (no rival to agree with) and the promotion's steps run inline
        // with a test clock.
        Assert.Equal([(MemberState.Init, MemberState.Standby), (MemberState.Standby, MemberState.Promoting), (MemberState.Promoting, MemberState.Active)], changes);
        Assert.Equal(["Member 1: Init -> Standby", "Member 1: Standby -> Promoting", "Member 1: Promoting -> Active"], logger.Of(1301));
        Assert.Single(logger.Of(1302));
        Assert.Contains("(no live active member)", logger.Of(1302)[0], StringComparison.Ordinal);

        controller.Dispose();
        Assert.Equal(MemberState.Down, controller.State);
        Assert.Equal((byte)MemberState.Down, engine.AdvertisedState);
        time.Advance(TimeSpan.FromSeconds(1));
        engine.OnTick(); // detached: a late tick is no stall of the controller's
        Assert.Equal(0, controller.LocalStalls);
        Assert.Equal(4, changes.Count);
    }

    [Fact]
    public void Controller_JoiningMember_SyncingAtExactlyOneDeadIntervalThenStandbyOnceSynchronized()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        using var controller = new MembershipController(engine, new MembershipOptions { StartsSynchronized = false }, new InMemoryReplicaSink(), time);
        controller.Evaluate(); // the first tick: listening from here

        for (int i = 0; i < 59; i++)
        {
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Init, controller.State); // 295 ms
        time.Advance(Tick);
        controller.Evaluate();
        Assert.Equal(MemberState.Syncing, controller.State); // exactly 300 ms
        time.Advance(Tick);
        controller.Evaluate();
        Assert.Equal(MemberState.Syncing, controller.State);

        controller.MarkSynchronized();
        time.Advance(Tick);
        controller.Evaluate();
        Assert.Equal(MemberState.Standby, controller.State);
    }

    [Fact]
    public void Controller_TickLateByMoreThanHalfADeadInterval_CountedAsALocalStallAndLogged()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        var logger = new ListLogger();
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time, logger);
        controller.Evaluate();

        time.Advance(TimeSpan.FromMilliseconds(150)); // exactly half: not a stall
        controller.Evaluate();
        Assert.Equal(0, controller.LocalStalls);
        time.Advance(TimeSpan.FromMilliseconds(200));
        controller.Evaluate();
        Assert.Equal(1, controller.LocalStalls);
        Assert.Equal(["Member 1: control tick 200 ms late (this process stalled); no takeover for one dead interval"], logger.Of(1304));
    }

    [Fact]
    public void Controller_ActiveSilent_TakesOverCommitsItsReplicaAndMeasuresFromTheActivesLastHeartbeat()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (active, channel) = Peer(1, 2, key, time, MemberState.Active, 200);
        using var _a = active;
        var sink = new InMemoryReplicaSink();
        using var controller = new MembershipController(engine, new MembershipOptions(), sink, time);
        var replica = new ConnectionEvent[5];
        for (int i = 0; i < replica.Length; i++)
        {
            replica[i] = ConnectionEvent.Create(ConnectionEventKind.Update, ConnectionKey.IPv4(0x0A00_0020u + (uint)i, 0x0A00_0002, 40000, 443, 6), ProtocolState.TcpEstablished, 3600, 0);
            replica[i].Entry.Owner = 1;
            replica[i].Entry.Version = 10 + (ulong)i;
        }

        engine.ApplySnapshot(replica);
        for (int i = 0; i < 100; i++)
        {
            Beat(engine, active, channel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Standby, controller.State);
        for (int i = 0; i < 200 && controller.State != MemberState.Active; i++)
        {
            time.Advance(Tick); // silent from here
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.InRange(engine.LastHeardAgoMs(1), (long)Dead.TotalMilliseconds, (long)Dead.TotalMilliseconds + 200);
        Assert.Equal(engine.LastHeardAgoMs(1), controller.LastFailoverMilliseconds);
        Assert.Equal(1, sink.Commits);
        Assert.Equal(5, sink.Committed.Count);
        Assert.Equal(5, controller.LastCommitted);
    }

    [Fact]
    public void Controller_HigherRankedStandbySilentBeforeAnyActive_MeasuresFromItsLastHeartbeat()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (standby, channel) = Peer(1, 2, key, time, MemberState.Standby, 200);
        using var _s = standby;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);
        for (int i = 0; i < 100; i++)
        {
            Beat(engine, standby, channel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Standby, controller.State); // the higher-ranked Standby would take over first
        for (int i = 0; i < 200 && controller.State != MemberState.Active; i++)
        {
            time.Advance(Tick); // silent from here
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.InRange(engine.LastHeardAgoMs(1), (long)Dead.TotalMilliseconds, (long)Dead.TotalMilliseconds + 200);
        Assert.Equal(engine.LastHeardAgoMs(1), controller.LastFailoverMilliseconds);
    }

    [Fact]
    public void Controller_PreemptionOverALowerRankedActive_PromotesForPreemption()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (active, channel) = Peer(1, 2, key, time, MemberState.Active, 50);
        using var _a = active;
        var logger = new ListLogger();
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 200, Preemption = true }, new InMemoryReplicaSink(), time, logger);
        for (int i = 0; i < 100 && controller.State != MemberState.Active; i++)
        {
            Beat(engine, active, channel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.Contains("(preemption)", Assert.Single(logger.Of(1302)), StringComparison.Ordinal);
    }

    [Fact]
    public void Controller_SplitBrain_LowerRankedStepsDownAndCountsItHigherRankedLogsEachEpisodeOnce()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (peer, channel) = Peer(1, 2, key, time, MemberState.Active, 50);
        using var _p = peer;
        var logger = new ListLogger();
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 100 }, new InMemoryReplicaSink(), time, logger);
        for (int i = 0; i < 200 && controller.State != MemberState.Active; i++)
        {
            time.Advance(Tick);
            controller.Evaluate(); // alone: becomes Active
        }

        Assert.Equal(MemberState.Active, controller.State);

        // A lower-ranked Active peer appears: this member stays Active and logs it once per episode.
        void Run(int ticks)
        {
            for (int i = 0; i < ticks; i++)
            {
                Beat(engine, peer, channel);
                time.Advance(Tick);
                controller.Evaluate();
            }
        }

        Run(30); // heartbeats go out every 100 ms
        Assert.Single(logger.Of(1306));
        peer.AdvertisedState = (byte)MemberState.Standby;
        Run(30);
        Assert.Single(logger.Of(1306));
        peer.AdvertisedState = (byte)MemberState.Active;
        Run(30);
        Assert.Equal(["Member 2 saw member 1 also Active (split brain): this member outranks it and stays Active; it steps down"], logger.Of(1306).Distinct());
        Assert.Equal(2, logger.Of(1306).Count);
        Assert.Equal(MemberState.Active, controller.State);
        Assert.Equal(0, controller.SplitBrainsResolved);

        // A higher-ranked Active: this member steps down.
        peer.AdvertisedPriority = 250;
        Run(30);
        Assert.Equal(MemberState.Standby, controller.State);
        Assert.Equal(1, controller.SplitBrainsResolved);
        Assert.Single(logger.Of(1303));
    }

    [Fact]
    public void Controller_LoadSharing_OwnersSortedOnlyActivePeersAndThePromotionCounted()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (peer, channel) = Peer(1, 2, key, time, MemberState.Standby, 100);
        using var _p = peer;
        var logger = new ListLogger();
        using var controller = new MembershipController(engine, new MembershipOptions { Mode = ClusterMode.LoadSharing }, new InMemoryReplicaSink(), time, logger);
        for (int i = 0; i < 100; i++)
        {
            Beat(engine, peer, channel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.Equal(1, controller.Failovers);
        Assert.Equal([2], controller.Owners); // the peer is alive but not Active: no owner

        peer.AdvertisedState = (byte)MemberState.Active;
        for (int i = 0; i < 30; i++)
        {
            Beat(engine, peer, channel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal([1, 2], controller.Owners);
        Assert.Equal(2, logger.Of(1305).Count);
        Assert.StartsWith("Member 2: owners 2 -> 1,2: took over 0 connections", logger.Of(1305)[1], StringComparison.Ordinal);
    }

    /// <summary>
    /// Member 3 with two higher-ranked peers: member 1 (<paramref name="firstState"/>) falls silent, then member 2 (a
    /// Standby) 150 ms later; member 3 takes over and reports the failover time from the Active it followed, or with no
    /// Active, from the most recently heard dead peer.
    /// </summary>
    [Theory]
    [InlineData(MemberState.Active, 1)]
    [InlineData(MemberState.Standby, 2)]
    public void Controller_TwoPeersFallSilentOneAfterTheOther_FailoverMeasuredFromTheRightPeer(MemberState firstState, byte measuredFrom)
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        using var engine = EngineWithTwoPeers(3, [1, 2], key, time);
        var (first, firstChannel) = Peer(1, 3, key, time, firstState, 200);
        using var _f = first;
        var (second, secondChannel) = Peer(2, 3, key, time, MemberState.Standby, 150);
        using var _s = second;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);
        void Run(int ticks, bool firstAlive, bool secondAlive)
        {
            for (int i = 0; i < ticks && controller.State != MemberState.Active; i++)
            {
                if (firstAlive)
                {
                    Beat(engine, first, firstChannel);
                }

                if (secondAlive)
                {
                    Beat(engine, second, secondChannel);
                }

                time.Advance(Tick);
                controller.Evaluate();
            }
        }

        Run(100, true, true);
        Assert.Equal(MemberState.Standby, controller.State);
        Run(30, false, true);
        Assert.Equal(MemberState.Standby, controller.State); // member 2 outranks this one
        Run(200, false, false);

        Assert.Equal(MemberState.Active, controller.State);
        if (firstState == MemberState.Active)
        {
            // A failover: member 2, alive but not taking over, is waited for only the successor window (four ack
            // intervals here) once member 1 is seen dead (simulator seed 3467), not until it is seen dead too; Active
            // after the agreement window (two ack intervals).
            Assert.InRange(engine.LastHeardAgoMs(1), (long)(Dead + (6 * Tick)).TotalMilliseconds, (long)(Dead + (8 * Tick)).TotalMilliseconds);
            Assert.True(engine.LastHeardAgoMs(2) < Dead.TotalMilliseconds);
        }
        else
        {
            // No Active yet (a forming cluster): the higher-ranked Standby goes first, waited for until it is seen dead.
            Assert.InRange(engine.LastHeardAgoMs(2), (long)Dead.TotalMilliseconds, (long)(Dead + (3 * Tick)).TotalMilliseconds); // promptly: no hold
            Assert.True(engine.LastHeardAgoMs(1) > engine.LastHeardAgoMs(2));
        }

        Assert.Equal(engine.LastHeardAgoMs(measuredFrom), controller.LastFailoverMilliseconds);
    }

    [Fact]
    public void Controller_AfterAStall_DecidesAtExactlyOneDeadIntervalAfterIt()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);
        controller.Evaluate();
        time.Advance(TimeSpan.FromMilliseconds(200)); // a stall: held until 200 + 300 ms
        controller.Evaluate();
        Assert.Equal(1, controller.LocalStalls);

        for (int i = 0; i < 59; i++)
        {
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Init, controller.State); // 495 ms: still held
        time.Advance(Tick);
        controller.Evaluate();
        Assert.Equal(MemberState.Standby, controller.State); // 500 ms: the hold is over
    }

    [Fact]
    public void Controller_HigherRankedStandbySilentWhileALowerRankedPeerIsHeard_MeasuredFromTheSilentPeerOnly()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        using var engine = EngineWithTwoPeers(2, [1, 3], key, time);
        var (high, highChannel) = Peer(1, 2, key, time, MemberState.Standby, 200);
        using var _h = high;
        var (low, lowChannel) = Peer(3, 2, key, time, MemberState.Standby, 50);
        using var _l = low;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 150 }, new InMemoryReplicaSink(), time);
        for (int i = 0; i < 300 && controller.State != MemberState.Active; i++)
        {
            if (i < 100)
            {
                Beat(engine, high, highChannel); // then silent
            }

            Beat(engine, low, lowChannel); // heard throughout
            time.Advance(Tick);
            controller.Evaluate();
        }

        Assert.Equal(MemberState.Active, controller.State);
        Assert.InRange(engine.LastHeardAgoMs(3), 0, 100);
        Assert.Equal(engine.LastHeardAgoMs(1), controller.LastFailoverMilliseconds); // the live peer does not count
    }

    [Fact]
    public void Controller_PreemptionWithTheActiveHeardThisMillisecond_FailoverTimeIsZeroNotADeadPeersSilence()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        using var engine = EngineWithTwoPeers(3, [1, 2], key, time);
        var (gone, goneChannel) = Peer(1, 3, key, time, MemberState.Standby, 100);
        using var _g = gone;
        var (active, activeChannel) = Peer(2, 3, key, time, MemberState.Active, 150);
        using var _a = active;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 200, Preemption = true }, new InMemoryReplicaSink(), time);
        Beat(engine, gone, goneChannel); // heard once, then silent: dead by the time this member is Standby
        while (controller.State != MemberState.Standby)
        {
            Beat(engine, active, activeChannel);
            time.Advance(Tick);
            controller.Evaluate();
        }

        int beats = activeChannel.SentTo(0).Count(d => d[3] == (byte)MessageType.Heartbeat);
        do
        {
            time.Advance(Tick);
            active.OnTick();
        }
        while (activeChannel.SentTo(0).Count(d => d[3] == (byte)MessageType.Heartbeat) == beats);

        Beat(engine, active, activeChannel); // a fresh heartbeat, then this member's tick at the same instant
        controller.Evaluate();

        Assert.Equal(MemberState.Active, controller.State);
        Assert.True(engine.LastHeardAgoMs(1) > (long)Dead.TotalMilliseconds);
        Assert.Equal(0, engine.LastHeardAgoMs(2));
        Assert.Equal(0, controller.LastFailoverMilliseconds);
    }

    [Fact]
    public void Controller_PromotedWithPeersHeardOnlyThroughData_FailoverTimeFromTheMostRecentlyHeard()
    {
        // Peers whose heartbeats were never heard are not alive (their state is unknown) although their data is: member
        // 1 was heard this very millisecond, member 2 some 100 ms earlier. No Active was followed: the failover time is
        // the silence of the most recently heard, 0.
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        using var engine = EngineWithTwoPeers(3, [1, 2], key, time);
        var (first, firstChannel) = Peer(1, 3, key, time, MemberState.Active, 100);
        using var _f = first;
        var (second, secondChannel) = Peer(2, 3, key, time, MemberState.Active, 100);
        using var _s = second;
        // The failover time at the decision: no agreement window (two peers would otherwise make the commit wait for a rival).
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 200 }, new InMemoryReplicaSink(), time) { AgreementWindow = TimeSpan.Zero };
        void DataOnly(SyncEngine from, CaptureChannel channel, ushort port)
        {
            from.Submit(EngineKit.New(EngineKit.Tcp(443, sourcePort: port)));
            from.StepSender();
            engine.HandleDatagram(channel.DataTo(0)[^1].AsSpan());
        }

        first.StartStepped();
        second.StartStepped();
        while (controller.State != MemberState.Standby)
        {
            time.Advance(Tick);
            controller.Evaluate();
            if (time.GetUtcNow() - EngineKit.Start == TimeSpan.FromMilliseconds(200))
            {
                DataOnly(second, secondChannel, 40001);
            }
        }

        DataOnly(first, firstChannel, 40002);
        controller.Evaluate();

        Assert.Equal(MemberState.Active, controller.State);
        Assert.Equal(0, engine.LastHeardAgoMs(1));
        Assert.InRange(engine.LastHeardAgoMs(2), 50, 200);
        Assert.Equal(0, controller.LastFailoverMilliseconds);
    }
}
