using ClusterSync.Core.Tests.Engine;
using ClusterSync.Membership;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Core.Tests.Membership;

public sealed class MembershipControllerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(5);   // the engine's ack interval
    private static readonly TimeSpan Dead = TimeSpan.FromMilliseconds(300); // 100 ms × 3, the defaults

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
