namespace ClusterSync.IntegrationTests.FullSync;

/// <summary>
/// The steps of a join by full sync while the source changes, shared by the transports: the source fills while the
/// joiner is away, the joiner pulls while the source churns, and the joiner ends with the source's table.
/// </summary>
internal static class JoinUnderChurn
{
    /// <summary>
    /// Fills the source (member 1) with <paramref name="count"/> connections while the joiner "was not there" (the link
    /// dropped both ways, so the source's flow control does not wait for it), then heals the link.
    /// </summary>
    public static void FillWhileJoinerAway(LoopbackCluster cluster, int count, TimeSpan settle)
    {
        var source = cluster.Members[0];
        cluster.Partition(true);
        LoopbackCluster.Fill(source, count);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.UpdatesSent >= count, settle));
        cluster.Partition(false);
        Assert.True(cluster.Members[1].TableCount < 1000);
    }

    /// <summary>
    /// Pulls with <paramref name="client"/> while up to <paramref name="rounds"/> rounds of new, updated and destroyed
    /// connections (5,000 changes each, bounded to 10 s) go through <paramref name="source"/>; returns once both ended.
    /// </summary>
    public static async Task<FullSyncResult> PullWhileChurning(FullSyncClient client, SyncEngine source, int rounds, int seedBase)
    {
        using var churnStop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var churn = Task.Run(() =>
        {
            for (int round = 0; round < rounds && !churnStop.IsCancellationRequested; round++)
            {
                LoopbackCluster.Drive(source, 5_000, seed: seedBase + round, population: 4_000, addressBase: 0x0C00_0000u + ((uint)round << 16));
            }
        });
        var result = await client.PullAsync(0);
        await churn;
        return result;
    }

    /// <summary>
    /// The pull completed with at least <paramref name="entries"/> entries, the tables end identical, the server served
    /// once, and the joiner's delta window starts at the cut (or later): nothing at or below it is asked for again.
    /// </summary>
    public static void AssertJoined(FullSyncResult result, int entries, SyncEngine source, SyncEngine joiner, FullSyncServer server, TimeSpan settle)
    {
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.True(result.Entries >= entries, $"{result.Entries} entries");
        LoopbackCluster.AssertIdentical(source, joiner, settle);
        Assert.True(LoopbackCluster.WaitUntil(() => server.Counters.Served == 1, settle));
        var (epoch, through) = joiner.ReceivedThrough(source.MemberId);
        Assert.Equal(source.Epoch, epoch);
        Assert.True(through >= result.CutSequence);
    }
}
