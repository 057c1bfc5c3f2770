namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// Anti-entropy over loopback UDP (issue 14, ghost connections): an insecure cluster has no full sync, so a Standby
/// that lost updates beyond the resend buffer keeps ghosts and misses destroys; the Active's range digests find and
/// repair the difference, and only it.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class AntiEntropyTests
{
    [Fact]
    public void StandbyLostUpdatesBeyondResendBuffer_NoFullSync_AntiEntropyMakesTablesIdentical()
    {
        using var cluster = new LoopbackCluster(2, keys: _ => null, configure: o => o with
        {
            Insecure = true,
            ResendBufferDatagrams = 64,
            SendWindowDatagrams = 32,
            AckEveryDatagrams = 8,
            AntiEntropyInterval = TimeSpan.FromMilliseconds(500),
            AntiEntropySettle = TimeSpan.FromMilliseconds(200),
        });
        var active = cluster.Members[0];
        var standby = cluster.Members[1];
        active.AdvertisedState = (byte)MemberState.Active;
        standby.AdvertisedState = (byte)MemberState.Standby;
        LoopbackCluster.Drive(active, 5_000, seed: 41, population: 2_000);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(active, standby) == 0, TimeSpan.FromSeconds(15)),
            $"{LoopbackCluster.Differences(active, standby)} differences before the partition: active {active.SnapshotTable().Count}, standby {standby.SnapshotTable().Count}; " +
            $"mismatches {standby.Counters.AntiEntropyMismatches}, repaired {standby.Counters.AntiEntropyEntriesRepaired}, resync {standby.Counters.ResyncNeeded}, drops {standby.Counters.TotalDrops}, applied {standby.Counters.UpdatesApplied}, sent {active.Counters.UpdatesSent}");
        long checksBefore = active.Counters.AntiEntropyChecks;
        long repairedBefore = standby.Counters.AntiEntropyEntriesRepaired;

        // A partition far longer than the resend buffer covers: destroys and updates the Standby never gets.
        long sentBefore = active.Counters.DatagramsSent;
        cluster.Partition(true);
        LoopbackCluster.Drive(active, 20_000, seed: 42, population: 2_000);
        Assert.True(LoopbackCluster.WaitUntil(() => active.PendingCount == 0 && active.Counters.DatagramsSent > sentBefore + 128, TimeSpan.FromSeconds(15)),
            $"sent {active.Counters.DatagramsSent - sentBefore} datagrams during the partition");
        cluster.Partition(false);
        Assert.True(LoopbackCluster.WaitUntil(() => standby.Counters.ResyncNeeded > 0, TimeSpan.FromSeconds(15)), "the Standby never noticed the loss");
        int diverged = LoopbackCluster.Differences(active, standby);

        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(active, standby) == 0, TimeSpan.FromSeconds(30)),
            $"still {LoopbackCluster.Differences(active, standby)} differences (were {diverged}); checks {active.Counters.AntiEntropyChecks}, " +
            $"mismatches {standby.Counters.AntiEntropyMismatches}, entries repaired {standby.Counters.AntiEntropyEntriesRepaired}");
        Assert.True(diverged > 0, "the partition caused no divergence: the test proves nothing");
        Assert.True(active.Counters.AntiEntropyChecks > checksBefore);
        Assert.True(standby.Counters.AntiEntropyMismatches >= 1);
        Assert.True(standby.Counters.AntiEntropyEntriesRepaired - repairedBefore >= diverged / 2,
            $"repaired {standby.Counters.AntiEntropyEntriesRepaired - repairedBefore} entries for {diverged} differences");
    }
}
