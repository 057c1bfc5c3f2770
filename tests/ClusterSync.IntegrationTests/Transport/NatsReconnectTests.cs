namespace ClusterSync.IntegrationTests.Transport;

/// <summary>The NATS server dies and comes back: the members' NATS connections reconnect and delta sync repairs what was lost.</summary>
public sealed class NatsReconnectTests
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(30);

    [SkippableFact]
    public void ServerKilledAndRestarted_MembersReconnectAndRepairWhatWasSentMeanwhile()
    {
        using var server = new NatsServerFixture(); // its own server: this test kills it
        Skip.If(server.Url is null, server.SkipReason);
        using var cluster = new LoopbackCluster(2, transport: TestTransport.Create(TestTransport.NatsName, server));
        var source = cluster.Members[0];
        var replica = cluster.Members[1];
        LoopbackCluster.Drive(source, 20_000, seed: 21, population: 5_000);
        LoopbackCluster.AssertIdentical(source, replica, s_settle);

        server.Kill();
        // Changes made while NATS is down: sent into the void (counted by the channel), kept in the resend buffer.
        LoopbackCluster.Drive(source, 20_000, seed: 22, population: 5_000, addressBase: 0x0B00_0000);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0, s_settle));
        Assert.True(LoopbackCluster.Differences(source, replica) > 0, "nothing can have crossed while the server was down");

        server.Restart();
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(source, replica) == 0, s_settle),
            $"tables differ by {LoopbackCluster.Differences(source, replica)} after the restart: {server.Log}");
        Assert.Equal(0, replica.Counters.ResyncNeeded);
        Assert.True(source.Counters.Retransmissions > 0, "what was lost during the outage must have been retransmitted");
    }
}
