namespace ClusterSync.IntegrationTests.Membership;

/// <summary>High availability on loopback: the Active member dies, the best Standby commits its replica and takes over.</summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class FailoverTests
{
    [Fact]
    public void Start_ThreeMembers_HighestPriorityBecomesActiveOthersStandby()
    {
        using var ha = new HaCluster([100, 200, 150]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[1].State == MemberState.Active
            && ha.Controllers[0].State == MemberState.Standby && ha.Controllers[2].State == MemberState.Standby, TimeSpan.FromSeconds(10)),
            string.Join(", ", ha.Controllers.Select(c => c.State)));
        Assert.Equal(1, ha.ActiveCount());
    }

    [Fact]
    public void ActiveKilled_StandbyTakesOverWithinDeadIntervalAndCommitsEverySyncedConnection()
    {
        using var ha = new HaCluster([200, 150, 100]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[0].State == MemberState.Active && ha.Controllers[1].State == MemberState.Standby, TimeSpan.FromSeconds(10)));
        var active = ha.Cluster.Members[0];
        LoopbackCluster.Drive(active, 30_000, seed: 7, population: 10_000);
        LoopbackCluster.AssertIdentical(active, ha.Cluster.Members[1], TimeSpan.FromSeconds(30));
        var synced = active.SnapshotTable();
        Assert.True(LoopbackCluster.WaitUntil(() => HaCluster.SeesActive(ha.Cluster.Members[1], 1), TimeSpan.FromSeconds(5)), "member 2 never heard member 1 as Active");

        // Kill the Active: its engine stops dead (no goodbye), as with SIGKILL.
        var deadline = ha.KillActiveAndAssertTakeover(active.Crash);
        ha.AssertCommittedByMember2(synced);

        Assert.True(ha.Controllers[1].Failovers == 1, ha.Story());
        Assert.InRange(ha.Controllers[1].LastFailoverMilliseconds, active.Options.DeadInterval.TotalMilliseconds - 110, deadline.TotalMilliseconds + 100);
    }

    [Fact]
    public void NewActive_ServesTakenOverConnections_UpdatesReachRemainingStandby()
    {
        using var ha = new HaCluster([200, 150, 100]);
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[0].State == MemberState.Active, TimeSpan.FromSeconds(10)));
        LoopbackCluster.Drive(ha.Cluster.Members[0], 5_000, seed: 8, population: 2_000);
        LoopbackCluster.AssertIdentical(ha.Cluster.Members[0], ha.Cluster.Members[2], TimeSpan.FromSeconds(30));
        ha.Cluster.Members[0].Dispose();
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)));

        // The same workload continues on the new Active (same seed: updates and destroys of the taken-over connections).
        LoopbackCluster.Drive(ha.Cluster.Members[1], 5_000, seed: 8, population: 2_000);
        LoopbackCluster.AssertIdentical(ha.Cluster.Members[1], ha.Cluster.Members[2], TimeSpan.FromSeconds(30));
        Assert.Contains(ha.Cluster.Members[2].SnapshotTable(), kv => kv.Value.Owner == 2);
    }
}
