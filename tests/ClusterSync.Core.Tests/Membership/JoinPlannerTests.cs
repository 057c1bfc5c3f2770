namespace ClusterSync.Core.Tests.Membership;

public sealed class JoinPlannerTests
{
    private readonly FakeTimeProvider _time = new(EngineKit.Start);

    private static MemberView M(byte id, MemberState state, bool alive = true, byte priority = 100) => new(id, priority, state, alive);

    private JoinPlanner Planner(byte self = 3, byte priority = 100) => new(self, priority, Dead, _time);

    [Fact]
    public void Next_ActiveAlive_PullsFromTheActiveEvenIfAStandbyOutranksIt()
    {
        var d = Planner().Next([M(1, MemberState.Standby, priority: 200), M(2, MemberState.Active)]);
        Assert.Equal((JoinStep.Pull, (byte)2), (d.Step, d.Source));
    }

    [Fact]
    public void Next_OnlyStandbysAlive_WaitsForAnActiveThenPullsFromBestStandby()
    {
        var planner = Planner();
        MemberView[] peers = [M(1, MemberState.Standby, priority: 50), M(2, MemberState.Standby, priority: 150)];
        Assert.Equal(JoinStep.Wait, planner.Next(peers).Step);
        _time.Advance(Dead);
        Assert.Equal(JoinStep.Wait, planner.Next(peers).Step);
        _time.Advance(Dead);
        var d = planner.Next(peers);
        Assert.Equal((JoinStep.Pull, (byte)2), (d.Step, d.Source));
    }

    [Fact]
    public void Next_SynchronizedPeerSeenThenBrieflyUnheard_NeverFirstMemberUntilSurvivorTimeout()
    {
        // Issue 14, bug 2: pulls fail (slots held, a busy source) and the view empties for a moment: the member
        // must keep trying, not start "synchronized (first member)" with a partial table.
        var planner = Planner();
        Assert.Equal(JoinStep.Pull, planner.Next([M(1, MemberState.Active)]).Step);
        for (int i = 0; i < 290; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.Equal(JoinStep.Wait, planner.Next([M(1, MemberState.Active, alive: false), M(2, MemberState.Init)]).Step);
        }

        Assert.Equal(JoinStep.Pull, planner.Next([M(1, MemberState.Active)]).Step); // back: pull

        _time.Advance(TimeSpan.FromSeconds(30)); // gone for good: this member carries on alone
        Assert.Equal(JoinStep.FirstMember, planner.Next([M(1, MemberState.Active, alive: false)]).Step);
    }

    [Fact]
    public void Next_NoPeerConfigured_FirstMemberOnlyAfterListeningThreeDeadIntervals()
    {
        var planner = Planner();
        Assert.Equal(JoinStep.Wait, planner.Next([]).Step);
        _time.Advance(Dead * 2);
        Assert.Equal(JoinStep.Wait, planner.Next([]).Step);
        _time.Advance(Dead);
        Assert.Equal(JoinStep.FirstMember, planner.Next([]).Step);
    }

    [Fact]
    public void Next_ConfiguredPeerNeverHeard_WaitsUntilAloneTimeoutNotThreeDeadIntervals()
    {
        // Issue 14: a restart inside a partition (or with a wrong key) hears nobody; the unheard peer may be a
        // synchronized Active. Silence for a few dead intervals is a brief view: keep waiting, pull once it is heard.
        var planner = Planner();
        MemberView[] silent = [M(1, MemberState.Down, alive: false), M(2, MemberState.Down, alive: false)];
        for (int i = 0; i < 99; i++)
        {
            Assert.Equal(JoinStep.Wait, planner.Next(silent).Step);
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        var d = planner.Next([M(1, MemberState.Active), M(2, MemberState.Down, alive: false)]);
        Assert.Equal((JoinStep.Pull, (byte)1), (d.Step, d.Source));
    }

    [Fact]
    public void Next_ConfiguredPeerNeverHeardForAloneTimeout_FirstMember()
    {
        var planner = new JoinPlanner(3, 100, Dead, _time, aloneAfter: TimeSpan.FromSeconds(5));
        MemberView[] silent = [M(1, MemberState.Down, alive: false)];
        Assert.Equal(JoinStep.Wait, planner.Next(silent).Step);
        _time.Advance(TimeSpan.FromMilliseconds(4999));
        Assert.Equal(JoinStep.Wait, planner.Next(silent).Step);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(JoinStep.FirstMember, planner.Next(silent).Step);
    }

    [Fact]
    public void Next_FormingPeerHeardThenUnheard_WaitsForAloneTimeout()
    {
        // Seed 142: m2 restarts while the cluster forms, hears m1 starting, then m1 is cut off (and becomes the
        // Active alone on its side): m2 must not start a second cluster with an empty table.
        var planner = Planner(self: 2, priority: 100);
        Assert.Equal(JoinStep.Wait, planner.Next([M(1, MemberState.Syncing)]).Step);
        _time.Advance(Dead * 3);
        Assert.Equal(JoinStep.Wait, planner.Next([M(1, MemberState.Syncing, alive: false)]).Step);
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(JoinStep.Wait, planner.Next([M(1, MemberState.Syncing, alive: false)]).Step);
    }

    [Fact]
    public void Next_PartOfTheClusterFormingOneConfiguredPeerUnheard_WaitsForAloneTimeout()
    {
        // Two restarted members on one side of a partition must not form a new cluster while the third, possibly the
        // synchronized Active, has never been heard.
        var top = Planner(self: 1, priority: 200);
        MemberView[] view = [M(2, MemberState.Syncing), M(3, MemberState.Down, alive: false)];
        _time.Advance(Dead * 3);
        Assert.Equal(JoinStep.Wait, top.Next(view).Step);
        _time.Advance(TimeSpan.FromSeconds(9) - (Dead * 3));
        Assert.Equal(JoinStep.Wait, top.Next(view).Step);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(JoinStep.FirstMember, top.Next(view).Step);
    }

    [Fact]
    public void Next_ClusterForming_OnlyTheHighestRankedStartsFirstOthersPullFromIt()
    {
        var top = Planner(self: 1, priority: 200);
        var other = Planner(self: 2, priority: 100);
        _time.Advance(Dead * 3);
        Assert.Equal(JoinStep.FirstMember, top.Next([M(2, MemberState.Syncing)]).Step);
        Assert.Equal(JoinStep.Wait, other.Next([M(1, MemberState.Syncing, priority: 200)]).Step);
        _time.Advance(Dead);
        Assert.Equal(JoinStep.Wait, other.Next([M(1, MemberState.Init, priority: 200)]).Step);
        var d = other.Next([M(1, MemberState.Active, priority: 200)]);
        Assert.Equal((JoinStep.Pull, (byte)1), (d.Step, d.Source));
    }

    [Fact]
    public void Next_SynchronizedPeerSeenThenEveryMemberRestarted_HighestRankedStartsFirst()
    {
        // Seed 709: every member restarted one after another; all Syncing, each had seen a synchronized peer.
        var top = Planner(self: 1, priority: 200);
        var other = Planner(self: 2, priority: 100);
        MemberView[] before = [M(2, MemberState.Active), M(3, MemberState.Standby)];
        Assert.Equal(JoinStep.Pull, top.Next(before).Step);
        Assert.Equal(JoinStep.Pull, other.Next([M(1, MemberState.Standby, priority: 200), M(3, MemberState.Active)]).Step);

        _time.Advance(Dead);
        Assert.Equal(JoinStep.Wait, top.Next([M(2, MemberState.Syncing), M(3, MemberState.Init)]).Step);
        _time.Advance(Dead * 2);
        Assert.Equal(JoinStep.FirstMember, top.Next([M(2, MemberState.Syncing), M(3, MemberState.Init)]).Step);
        Assert.Equal(JoinStep.Wait, other.Next([M(1, MemberState.Syncing, priority: 200), M(3, MemberState.Syncing)]).Step);
        var third = Planner(self: 1, priority: 200);
        Assert.Equal(JoinStep.Pull, third.Next(before).Step);
        _time.Advance(Dead * 3);
        Assert.Equal(JoinStep.Wait, third.Next([M(2, MemberState.Syncing), M(3, MemberState.Down, alive: false)]).Step); // m3 may still hold it
    }
}
