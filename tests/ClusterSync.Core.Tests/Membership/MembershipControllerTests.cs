namespace ClusterSync.Core.Tests.Membership;

public sealed class MembershipControllerTests
{

    [Fact]
    public void Evaluate_AlonePeerNeverHeard_BecomesActiveAfterInitInterval()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);

        int ticks = RunUntil(controller, time, MemberState.Active, TimeSpan.FromSeconds(2));

        Assert.InRange(ticks * Tick.TotalMilliseconds, Dead.TotalMilliseconds, Dead.TotalMilliseconds + 20);
        Assert.Equal(0, controller.LocalStalls);
        Assert.Equal(1, controller.Failovers);
    }

    [Fact]
    public void Evaluate_AfterOwnProcessStalled_HoldsTakeoverForOneDeadInterval()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);
        controller.Evaluate();

        // The process stalls for a second (GC, CPU starvation): the next tick is that late. The silent peer may have
        // heartbeats waiting unread, so no takeover until one dead interval of normal ticks has passed.
        time.Advance(TimeSpan.FromSeconds(1));
        controller.Evaluate();
        Assert.Equal(1, controller.LocalStalls);
        Assert.Equal(MemberState.Init, controller.State);
        int ticks = RunUntil(controller, time, MemberState.Active, TimeSpan.FromSeconds(2));

        Assert.InRange(ticks * Tick.TotalMilliseconds, Dead.TotalMilliseconds - Tick.TotalMilliseconds, Dead.TotalMilliseconds + 20);
        Assert.Equal(1, controller.LocalStalls);
    }

    [Fact]
    public void Evaluate_FirstTickLongAfterConstruction_ListensOneDeadIntervalFromTheFirstTick()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        using var controller = new MembershipController(engine, new MembershipOptions(), new InMemoryReplicaSink(), time);

        // A slow start-up: the engine's first tick comes a second after the controller was made. Nothing was heard
        // yet because nothing listened yet: the member must not conclude it is alone.
        time.Advance(TimeSpan.FromSeconds(1));
        controller.Evaluate();
        Assert.Equal(MemberState.Init, controller.State);
        int ticks = RunUntil(controller, time, MemberState.Standby, TimeSpan.FromSeconds(2));

        Assert.InRange(ticks * Tick.TotalMilliseconds, Dead.TotalMilliseconds - Tick.TotalMilliseconds, Dead.TotalMilliseconds + 20);
    }

    [Fact]
    public void Evaluate_ActiveRestartsWithinDeadInterval_StandbyTakesOverAndRestartedMemberDoesNotWaitInLine()
    {
        // Member 1 (priority 200) is Active, member 2 (priority 100) Standby, preemption off. Member 1 is killed and
        // restarted before its silence reaches the dead interval: member 2 learns it from the new epoch (a member in
        // Init). Waiting for a higher-ranked member in Init is for a cluster that is forming; here it would leave the
        // cluster without an Active and hand the role back to member 1 once it has joined (issue 14, bug 6).
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (active, activeChannel) = Peer(key, time, MemberState.Active);
        using var _a = active;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 100 }, new InMemoryReplicaSink(), time);
        for (int i = 0; i < 100 && controller.State != MemberState.Standby; i++)
        {
            HeartbeatTick(controller, time, engine, active, activeChannel);
        }

        Assert.Equal(MemberState.Standby, controller.State);
        Assert.True(engine.RelaysUnfollowed); // a Standby in high availability passes on what another member writes
        var (restarted, restartedChannel) = Peer(key, time, MemberState.Init);
        using var _r = restarted;
        Assert.NotEqual(active.Epoch, restarted.Epoch);
        HeartbeatTick(controller, time, engine, restarted, restartedChannel);

        Assert.Equal(MemberState.Active, controller.State);
        Assert.False(engine.RelaysUnfollowed); // an Active does not
        Assert.Equal(1, controller.Failovers);
    }

    [Fact]
    public void Evaluate_ClusterFormingHigherRankedPeerInInit_WaitsForIt()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (peer, peerChannel) = Peer(key, time, MemberState.Init);
        using var _p = peer;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 100 }, new InMemoryReplicaSink(), time);
        for (int i = 0; i < 200; i++)
        {
            HeartbeatTick(controller, time, engine, peer, peerChannel);
        }

        Assert.Equal(MemberState.Standby, controller.State);
    }

    [Fact]
    public void Evaluate_BackFromHearingNobody_HoldsTakeoverForOneDeadInterval()
    {
        // Seed 955: a member back from a partition promoted itself before it had heard the higher-ranked member.
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (active, activeChannel) = Peer(key, time, MemberState.Active);
        using var _a = active;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 100 }, new InMemoryReplicaSink(), time);
        controller.MarkSynchronized();
        for (int i = 0; i < 100 && controller.State != MemberState.Standby; i++)
        {
            HeartbeatTick(controller, time, engine, active, activeChannel);
        }

        Assert.Equal(MemberState.Standby, controller.State);
        RunUntil(controller, time, MemberState.Active, Dead * 2); // cut off: it hears nobody and takes over
        HeartbeatTick(controller, time, engine, active, activeChannel); // back: the higher-ranked Active is heard, this one steps down
        Assert.Equal(MemberState.Standby, controller.State);

        var (restarted, restartedChannel) = Peer(key, time, MemberState.Init); // the Active restarts at once
        using var _r = restarted;
        HeartbeatTick(controller, time, engine, restarted, restartedChannel);
        Assert.Equal(MemberState.Standby, controller.State); // just back: no takeover yet

        int ticks = RunUntil(controller, time, MemberState.Active, Dead * 2);
        Assert.InRange(ticks * Tick.TotalMilliseconds, Dead.TotalMilliseconds - (3 * Tick.TotalMilliseconds), Dead.TotalMilliseconds);
    }

    /// <summary>Member 1 (priority 200) advertising <paramref name="state"/>, on the cluster key and clock given.</summary>
    private static (SyncEngine Peer, CaptureChannel Channel) Peer(ClusterKey key, FakeTimeProvider time, MemberState state)
    {
        var (peer, channel) = EngineKit.Create(1, 2, key, time);
        peer.AdvertisedState = (byte)state;
        peer.AdvertisedPriority = 200;
        return (peer, channel);
    }

    /// <summary>A heartbeat from <paramref name="from"/> to <paramref name="to"/>, then one tick of the clock and of the controller.</summary>
    private static void HeartbeatTick(MembershipController controller, FakeTimeProvider time, SyncEngine to, SyncEngine from, CaptureChannel fromChannel)
    {
        Heartbeat(to, from, fromChannel);
        time.Advance(Tick);
        controller.Evaluate();
    }

    /// <summary>Has <paramref name="from"/> send a heartbeat and feeds it to <paramref name="to"/>.</summary>
    private static void Heartbeat(SyncEngine to, SyncEngine from, CaptureChannel fromChannel)
    {
        from.OnTick();
        var beats = fromChannel.SentTo(0).Where(d => d[3] == (byte)MessageType.Heartbeat).ToList();
        if (beats.Count > 0)
        {
            to.HandleDatagram(beats[^1].AsSpan());
        }
    }

    [Fact]
    public void Promote_ReplicaWithRelatedEntries_CommittedMastersFirstWithMasterAndMark()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var (engine, _) = EngineKit.Create(1, 2, null, time, insecure: true);
        using var _e = engine;
        var control = EngineKit.Tcp(21, sourcePort: 41000);
        var records = new List<Connections.ConnectionEvent>();
        for (int i = 0; i < 20; i++)
        {
            // The related entries come first in the peer's records (and so in the table's slots).
            var e = EngineKit.New(EngineKit.Tcp((ushort)(50000 + i), sourcePort: (ushort)(42000 + i)), state: Connections.ProtocolState.TcpEstablished);
            e.Entry.Master = control;
            e.Entry.Mark = (uint)i + 1;
            records.Add(e);
        }

        records.Add(EngineKit.New(control, state: Connections.ProtocolState.TcpEstablished));
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            r.Kind = Connections.ConnectionEventKind.Update;
            r.Entry.Owner = 2;
            r.Entry.Version = (ulong)i + 1;
            r.Entry.CreatedMs = r.Entry.UpdatedMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            records[i] = r;
        }

        Assert.Equal(records.Count, engine.ApplySnapshot(records.ToArray()));
        var sink = new InMemoryReplicaSink();
        using var controller = new MembershipController(engine, new MembershipOptions(), sink, time);

        RunUntil(controller, time, MemberState.Active, TimeSpan.FromSeconds(2));

        var committed = sink.CommittedSnapshot;
        Assert.Equal(21, committed.Count);
        Assert.Equal(control, committed[0].Key);
        Assert.All(committed.Skip(1), kv => Assert.Equal(control, kv.Value.Master));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (uint)i), committed.Skip(1).Select(kv => kv.Value.Mark));
    }

    private static int RunUntil(MembershipController controller, FakeTimeProvider time, MemberState state, TimeSpan limit)
    {
        int ticks = 0;
        while (controller.State != state)
        {
            Assert.True(ticks * Tick < limit, $"still {controller.State} after {limit}");
            time.Advance(Tick);
            controller.Evaluate();
            ticks++;
        }

        return ticks;
    }
}
