namespace ClusterSync.IntegrationTests.FullSync;

/// <summary>Full sync over the NATS transport plugin's streams (a real nats-server), with delta sync over NATS beside it.</summary>
public sealed class NatsFullSyncTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(30);

    [SkippableFact]
    public async Task Joiner_PullsSnapshotOverNatsWhileSourceChanges_EndsIdentical()
    {
        var transport = (TestTransport.NatsTestTransport)TestTransport.Create(TestTransport.NatsName, nats);
        using var cluster = new LoopbackCluster(2, configure: o => o with { TableCapacity = 1 << 18 }, transport: transport);
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        JoinUnderChurn.FillWhileJoinerAway(cluster, 100_000, s_settle);

        using var streams = transport.CreateStreamChannels(2);
        await using var server = new FullSyncServer(source, streams[0], cluster.Key);
        server.Start();
        var client = new FullSyncClient(joiner, streams[1], cluster.Key);
        var result = await JoinUnderChurn.PullWhileChurning(client, source, rounds: 10, seedBase: 200);

        JoinUnderChurn.AssertJoined(result, 100_000, source, joiner, server, s_settle);
    }
}
