namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// Maintenance and manual switchover (Membership/README.md, "Administrative down and switchover"): graceful leave of the
/// Active on the split-brain handover's acknowledgement check, the named successor, Maintenance out of elections, and
/// the refusals. Real stepped engines and controllers on one fake clock (<see cref="SteppedCluster"/>).
/// </summary>
public sealed class MembershipAdminTests
{
    private static ConnectionKey Conn(int i) => EngineKit.Tcp(443, sourcePort: (ushort)(42000 + i));

    private static int Held(Member member, IEnumerable<ConnectionKey> keys) => keys.Count(k => member.Engine.TryGetEntry(k, out _));

    private static SteppedCluster Formed((byte, byte)[] members)
    {
        var c = new SteppedCluster(members);
        c.RunUntil(() => c.Members.Count(m => m.State == MemberState.Active) == 1 && c.Members.All(m => m.State is MemberState.Active or MemberState.Standby), Dead * 5, "cluster formed");
        return c;
    }

    [Fact]
    public async Task RequestDown_Active_PendingChangesReachTheBestStandbyBeforeItLeaves_SuccessorTakesOverWithThem()
    {
        using var c = Formed([(1, 200), (2, 100), (3, 150)]);
        Assert.Equal(MemberState.Active, c[1].State);
        var keys = Enumerable.Range(0, 20).Select(Conn).ToArray();
        foreach (var k in keys)
        {
            c[1].Engine.Submit(EngineKit.New(k)); // pending: not sent yet
        }

        int heldWhenLeaving = -1;
        c[1].Controller.StateChanged += (_, to) => heldWhenLeaving = to == MemberState.Maintenance ? Held(c[3], keys) : heldWhenLeaving;
        var down = c[1].Controller.RequestDown();
        Assert.False(c[1].Controller.Serving);
        c.RunUntil(() => down.IsCompleted, Dead * 5, "admin down done");

        var result = await down;
        Assert.Equal(AdminOutcome.Done, result.Outcome);
        Assert.Equal(3, result.Successor); // priority 150 outranks 100
        Assert.Equal(keys.Length, heldWhenLeaving);
        Assert.Equal(MemberState.Maintenance, c[1].State);
        Assert.Equal(MemberState.Active, c[3].State);
        Assert.Equal(keys.Length, c[3].Sink.Committed.Keys.Count(k => keys.Contains(k)));
        Assert.Equal(MemberState.Standby, c[2].State);
        Assert.True(c[1].Controller.AdministrativelyDown);
        Assert.Contains("member 1 handed the Active role over", c[3].Logger.Of(1302).Single(), StringComparison.Ordinal);
        c.Run(Dead * 3);
        Assert.Equal(MemberState.Maintenance, c[1].State);
        Assert.Equal(MemberState.Active, c[3].State);
        Assert.Equal(0, c[2].Controller.Failovers);
    }

    [Fact]
    public async Task RequestFailover_ToLowestRankedStandby_ItTakesOver_OthersHold_FormerActiveBecomesStandby()
    {
        using var c = Formed([(1, 200), (2, 100), (3, 150)]);
        var failover = c[1].Controller.RequestFailover(2);
        c.RunUntil(() => failover.IsCompleted, Dead * 5, "failover done");

        var done = await failover;
        Assert.Equal(AdminOutcome.Done, done.Outcome);
        Assert.Equal(2, done.Successor);
        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Equal(MemberState.Standby, c[3].State);
        c.RunUntil(() => c[1].State == MemberState.Standby, Dead * 2, "member 1 Standby again");
        c.Run(Dead * 3);
        Assert.Equal(MemberState.Active, c[2].State);
        Assert.Equal(0, c[3].Controller.Failovers);
        Assert.False(c[1].Controller.AdministrativelyDown);
        Assert.Equal(MemberState.Standby, c[1].State);
    }

    [Fact]
    public async Task RequestDown_Maintenance_StaysOutOfTheElectionWhenTheActiveDies_RequestUpRejoinsAsStandbyAndTakesOver()
    {
        using var c = Formed([(1, 200), (2, 100)]);
        var standbyDown = c[2].Controller.RequestDown();
        c.RunUntil(() => standbyDown.IsCompleted, Dead, "member 2 down");
        Assert.Equal(AdminOutcome.Done, (await standbyDown).Outcome);
        Assert.Equal(MemberState.Maintenance, c[2].State);
        var keys = Enumerable.Range(0, 10).Select(Conn).ToArray();
        foreach (var k in keys)
        {
            c[1].Engine.Submit(EngineKit.New(k));
        }

        c.Run(Tick * 4);
        Assert.Equal(keys.Length, Held(c[2], keys)); // a Maintenance member keeps its replica current

        c[1].Up = false; // the Active crashes
        c.Run(Dead * 4);
        Assert.Equal(MemberState.Maintenance, c[2].State);
        Assert.Equal(0, c[2].Controller.Failovers);

        var up = c[2].Controller.RequestUp();
        c.RunUntil(() => c[2].State == MemberState.Active, Dead * 3, "member 2 back and Active");
        var upResult = await up;
        Assert.Equal(AdminOutcome.Done, upResult.Outcome);
        Assert.Equal(MemberState.Standby, upResult.State);
        Assert.Equal(keys.Length, c[2].Sink.Committed.Keys.Count(k => keys.Contains(k)));
    }

    [Fact]
    public async Task RequestDown_SuccessorNeverAcknowledges_AbandonedAtTheLimit_StillActiveAndServing()
    {
        using var c = Formed([(1, 200), (2, 100)]);
        c.Cut(2, 1); // member 2 hears member 1 but its acknowledgements never arrive (and it looks dead to member 1 later)
        var keys = Enumerable.Range(0, 5).Select(Conn).ToArray();
        foreach (var k in keys)
        {
            c[1].Engine.Submit(EngineKit.New(k));
        }

        var down = c[1].Controller.RequestDown();
        c.RunUntil(() => down.IsCompleted, Dead * 12, "down abandoned");

        Assert.Equal(AdminOutcome.Failed, (await down).Outcome);
        Assert.Equal(MemberState.Active, c[1].State);
        Assert.True(c[1].Controller.Serving);
        Assert.False(c[1].Controller.AdministrativelyDown);
        Assert.Single(c[1].Logger.Of(1312));
    }

    [Fact]
    public async Task Requests_Refused_WithoutStandbyToAnUnknownOrNonStandbyMemberOrWhenNotActive()
    {
        using var c = Formed([(1, 200), (2, 100)]);
        Assert.Equal(AdminOutcome.Refused, (await c[2].Controller.RequestFailover(1)).Outcome); // not Active
        Assert.Equal(AdminOutcome.Refused, (await c[1].Controller.RequestFailover(9)).Outcome); // not a member
        Assert.Equal(AdminOutcome.Done, (await c[1].Controller.RequestFailover(1)).Outcome); // already Active
        Assert.Equal(AdminOutcome.Done, (await c[1].Controller.RequestUp()).Outcome); // not down: nothing to do

        c[2].Up = false;
        c.Run(Dead * 2);
        var alone = (await c[1].Controller.RequestDown());
        Assert.Equal(AdminOutcome.Refused, alone.Outcome);
        Assert.Contains("no live Standby", alone.Message, StringComparison.Ordinal);
        Assert.Equal(AdminOutcome.Refused, (await c[1].Controller.RequestFailover(2)).Outcome);
        Assert.Equal(MemberState.Active, c[1].State);
        Assert.True(c[1].Controller.Serving);
    }
}
