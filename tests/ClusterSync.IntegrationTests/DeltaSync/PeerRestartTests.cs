namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// Issue 14, bug 1: a Standby killed and restarted (a new epoch) under churn. The source must neither keep the old
/// life's acknowledgements (skipped resends, a wedged send window that stops replication to every peer) nor wait for
/// the new life; after each restart and its full sync every member holds the source's table.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class PeerRestartTests
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task StandbyRestartedRepeatedlyUnderChurn_ReplicationNeverStallsAndTablesEndIdentical()
    {
        using var cluster = new LoopbackCluster(3, configure: o => o with { TableCapacity = 1 << 17 });
        var key = cluster.Key;
        var source = cluster.Members[0];
        var steady = cluster.Members[1];
        var endpoints = cluster.Sockets.Select(s => s.LocalEndPoint).ToList();
        using var serverChannel = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), []);
        var server = new FullSyncServer(source, serverChannel, key);
        server.Start();
        try
        {
            using var stop = new CancellationTokenSource();
            var churn = Task.Run(() =>
            {
                for (int round = 0; !stop.IsCancellationRequested && round < 10_000; round++)
                {
                    LoopbackCluster.Drive(source, 500, seed: 300 + round, population: 5_000);
                    stop.Token.WaitHandle.WaitOne(2); // ~100-200k changes/s at most, bounded by the round count
                }
            });

            Assert.True(LoopbackCluster.WaitUntil(() => source.GetPeerStatus().All(p => p.Epoch != 0), s_settle), "the source never heard every member");
            for (int restart = 0; restart < 10; restart++)
            {
                cluster.Members[2].Crash();
                ulong sentBefore = source.LastDataSequence;
                ulong steadyBefore = steady.ReceivedThrough(source.MemberId).Cumulative;
                var socket = new UdpDatagramChannel(endpoints[2], [endpoints[0], endpoints[1]], 1500);
                var restarted = new SyncEngine(new SyncEngineOptions
                {
                    MemberId = 3,
                    PeerMemberIds = [1, 2],
                    Policy = LoopbackCluster.SyncEverything,
                    TableCapacity = 1 << 17,
                    Epoch = (ulong)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + restart + 1),
                }, socket, key);
                cluster.Members[2] = restarted;
                restarted.Start();

                // Before any full sync (an insecure cluster has none; a secure joiner listens a dead interval first), the
                // new life must not wedge the source: replication goes on to both Standbys.
                Assert.True(LoopbackCluster.WaitUntil(() => source.LastDataSequence > sentBefore + 1000
                        && steady.ReceivedThrough(source.MemberId).Cumulative > steadyBefore + 1000
                        && restarted.ReceivedThrough(source.MemberId).Cumulative > sentBefore + 500, s_settle),
                    $"restart {restart}: replication stalled (source sent {source.LastDataSequence}, was {sentBefore}; steady received " +
                    $"{steady.ReceivedThrough(source.MemberId).Cumulative}; restarted received {restarted.ReceivedThrough(source.MemberId).Cumulative}; " +
                    $"window stalls {source.Counters.WindowStalls})");

                using var joinerChannel = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), [serverChannel.LocalEndPoint]);
                var result = await new FullSyncClient(restarted, joinerChannel, key).PullAsync(0);
                Assert.Equal(FullSyncStatus.Completed, result.Status);
            }

            await stop.CancelAsync();
            await churn;
            Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0
                    && LoopbackCluster.Differences(source, steady) == 0 && LoopbackCluster.Differences(source, cluster.Members[2]) == 0, s_settle),
                $"tables differ: steady by {LoopbackCluster.Differences(source, steady)}, restarted by {LoopbackCluster.Differences(source, cluster.Members[2])}");
            Assert.Equal(10, source.Counters.PeerRestarts); // every life acknowledged the source (a short life may go unheard by the steady Standby)
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
