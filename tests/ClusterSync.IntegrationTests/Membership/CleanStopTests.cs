namespace ClusterSync.IntegrationTests.Membership;

/// <summary>A member that stops cleanly says so (heartbeats with state Down): its peers react at once, not after the dead interval.</summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class CleanStopTests
{
    [Fact]
    public void ActiveStopsCleanly_StandbyTakesOverWellBeforeTheDeadInterval()
    {
        using var ha = new HaCluster([200, 100]);
        var (cluster, controllers, sinks) = (ha.Cluster, ha.Controllers, ha.Sinks);
        Assert.True(LoopbackCluster.WaitUntil(() => controllers[0].State == MemberState.Active && controllers[1].State == MemberState.Standby,
            TimeSpan.FromSeconds(10)), $"{controllers[0].State}, {controllers[1].State}");
        LoopbackCluster.Drive(cluster.Members[0], 2_000, seed: 5, population: 1_000);
        LoopbackCluster.AssertIdentical(cluster.Members[0], cluster.Members[1], TimeSpan.FromSeconds(20));
        var views = new MemberView[1];
        Assert.True(LoopbackCluster.WaitUntil(() => cluster.Members[1].GetPeerViews(views) == 1 && views[0].State == MemberState.Active, TimeSpan.FromSeconds(5)));

        // A clean stop, as the node host does on SIGTERM: the controller publishes Down, the engine says it on the wire.
        var stopped = Stopwatch.StartNew();
        controllers[0].Dispose();
        cluster.Members[0].Dispose();
        Assert.True(LoopbackCluster.WaitUntil(() => controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)), "no takeover");
        var takeover = stopped.Elapsed;

        var dead = cluster.Members[1].Options.DeadInterval;
        Assert.True(takeover < dead / 2, $"takeover after {takeover.TotalMilliseconds:F0} ms; a Down heartbeat should beat the dead interval ({dead.TotalMilliseconds} ms)");
        Assert.Equal(cluster.Members[0].SnapshotTable().Count, sinks[1].Committed.Count);
        Assert.True(cluster.Members[1].Counters.HeartbeatsReceived > 0);
    }
}
