namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// Split brain, the lower-ranked side (simulator seeds 199, 449, 708): it hands its table over before it steps down, and
/// does not wait for ever for a winner that never acknowledges it.
/// </summary>
public sealed class MembershipHandoverTests
{

    [Fact]
    public void Evaluate_HigherRankedActiveSeenWithChangesUnacknowledged_StaysActiveUntilTheHandoverLimitThenStepsDown()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (engine, _) = EngineKit.Create(2, 1, key, time);
        using var _e = engine;
        var (winner, winnerChannel) = EngineKit.Create(1, 2, key, time);
        using var _w = winner;
        winner.AdvertisedPriority = 200;
        using var controller = new MembershipController(engine, new MembershipOptions { Priority = 100 }, new InMemoryReplicaSink(), time);
        controller.MarkSynchronized();
        int limit = 0;
        while (controller.State != MemberState.Active)
        {
            Assert.True(limit++ < 1000, $"still {controller.State}");
            time.Advance(Tick);
            controller.Evaluate(); // nobody heard: it becomes Active on its own
        }

        engine.Submit(EngineKit.New(EngineKit.Tcp(443))); // served while split: queued, never acknowledged by the winner
        winner.AdvertisedState = (byte)MemberState.Active;

        int ticks = 0;
        while (controller.State == MemberState.Active)
        {
            Assert.True(ticks * Tick < Dead * 12, "never stepped down");
            Heartbeat(engine, winner, winnerChannel);
            time.Advance(Tick);
            controller.Evaluate();
            ticks++;
        }

        Assert.Equal(MemberState.Standby, controller.State);
        Assert.InRange(ticks * Tick.TotalMilliseconds, (Dead * 10).TotalMilliseconds, (Dead * 10).TotalMilliseconds + (3 * Tick.TotalMilliseconds));
        Assert.Equal(1, controller.SplitBrainsResolved);
    }

    private static void Heartbeat(SyncEngine to, SyncEngine from, CaptureChannel fromChannel)
    {
        from.OnTick();
        var beats = fromChannel.SentTo(0).Where(d => d[3] == (byte)MessageType.Heartbeat).ToList();
        if (beats.Count > 0)
        {
            to.HandleDatagram(beats[^1].AsSpan());
        }
    }
}
