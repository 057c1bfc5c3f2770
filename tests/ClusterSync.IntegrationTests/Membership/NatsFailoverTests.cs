namespace ClusterSync.IntegrationTests.Membership;

/// <summary>
/// High availability with every member on the NATS transport plugin (a real nats-server on loopback): the Active dies,
/// the best Standby commits its replica, which holds every synchronized connection, and the cluster goes on over NATS.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NatsFailoverTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [SkippableFact]
    public void ActiveKilled_StandbyOverNatsTakesOverWithNoSynchronizedConnectionLost()
    {
        using var ha = new HaCluster([200, 150, 100], transport: TestTransport.Create(TestTransport.NatsName, nats));
        var cluster = ha.Cluster;
        Assert.True(LoopbackCluster.WaitUntil(() => ha.Controllers[0].State == MemberState.Active && ha.Controllers[1].State == MemberState.Standby
            && ha.Controllers[2].State == MemberState.Standby, TimeSpan.FromSeconds(10)), ha.Story());
        var active = cluster.Members[0];
        LoopbackCluster.Drive(active, 30_000, seed: 17, population: 10_000);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(active, cluster.Members[1]) == 0
            && LoopbackCluster.Differences(active, cluster.Members[2]) == 0, TimeSpan.FromSeconds(30)),
            $"differences {LoopbackCluster.Differences(active, cluster.Members[1])}, {LoopbackCluster.Differences(active, cluster.Members[2])}");
        var synced = active.SnapshotTable();
        Assert.True(synced.Count > 1000);
        Assert.True(LoopbackCluster.WaitUntil(() => HaCluster.SeesActive(cluster.Members[1], 1), TimeSpan.FromSeconds(5)), "member 2 never heard member 1 as Active");

        // Kill the Active: its engine and its NATS connection stop dead (no goodbye), as with SIGKILL.
        ha.KillActiveAndAssertTakeover(active.Dispose);
        ha.AssertCommittedByMember2(synced);

        // The new Active serves the taken-over connections; its updates reach the remaining Standby over NATS.
        LoopbackCluster.Drive(cluster.Members[1], 5_000, seed: 17, population: 10_000);
        LoopbackCluster.AssertIdentical(cluster.Members[1], cluster.Members[2], TimeSpan.FromSeconds(30));
        Assert.Contains(cluster.Members[2].SnapshotTable(), kv => kv.Value.Owner == 2);
    }
}
