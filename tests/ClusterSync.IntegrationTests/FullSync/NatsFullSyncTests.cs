using ClusterSync.Connections;
using ClusterSync.FullSync;
using ClusterSync.IntegrationTests.Transport;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.IntegrationTests.FullSync;

/// <summary>Full sync over the NATS transport plugin's streams (a real nats-server), with delta sync over NATS beside it.</summary>
public sealed class NatsFullSyncTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(30);

    [SkippableFact]
    public async Task Joiner_PullsSnapshotOverNatsWhileSourceChanges_EndsIdentical()
    {
        var transport = (TestTransport.NatsTestTransport)TestTransport.Create(TestTransport.NatsName, nats);
        var key = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(2, keys: _ => key, configure: o => o with { TableCapacity = 1 << 18 }, transport: transport);
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        // The joiner "was not there" while the source filled.
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = true;
        var batch = new ConnectionEvent[256];
        long now = source.NowMs();
        for (int i = 0; i < 100_000; i += batch.Length)
        {
            for (int j = 0; j < batch.Length; j++)
            {
                batch[j] = ConnectionEvent.Create(ConnectionEventKind.New, ConnectionKey.IPv4(0x0B00_0000u + (uint)((i + j) >> 16), 0xC0A8_0001, (ushort)(i + j), 443, 6),
                    ProtocolState.TcpEstablished, 3600, now);
            }

            source.Submit(batch);
        }

        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.UpdatesSent >= 100_000, s_settle));
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = false;
        Assert.True(joiner.TableCount < 1000);

        var streams = transport.CreateStreamChannels(2);
        try
        {
            await using var server = new FullSyncServer(source, streams[0], key);
            server.Start();
            var client = new FullSyncClient(joiner, streams[1], key);
            using var churnStop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var churn = Task.Run(() =>
            {
                for (int round = 0; round < 10 && !churnStop.IsCancellationRequested; round++)
                {
                    LoopbackCluster.Drive(source, 5_000, seed: 200 + round, population: 4_000, addressBase: 0x0C00_0000u + ((uint)round << 16));
                }
            });
            var result = await client.PullAsync(0);
            await churn;

            Assert.Equal(FullSyncStatus.Completed, result.Status);
            Assert.True(result.Entries >= 100_000, $"{result.Entries} entries");
            Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(source, joiner) == 0, s_settle),
                $"tables differ by {LoopbackCluster.Differences(source, joiner)}");
            Assert.True(LoopbackCluster.WaitUntil(() => server.Counters.Served == 1, s_settle));
            var (epoch, through) = joiner.ReceivedThrough(source.MemberId);
            Assert.Equal(source.Epoch, epoch);
            Assert.True(through >= result.CutSequence);
        }
        finally
        {
            foreach (var s in streams)
            {
                ((IDisposable)s).Dispose();
            }
        }
    }
}
