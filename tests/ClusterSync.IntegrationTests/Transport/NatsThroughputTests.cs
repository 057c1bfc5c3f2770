using ClusterSync.Cli.Bench;
using Xunit.Abstractions;

namespace ClusterSync.IntegrationTests.Transport;

/// <summary>
/// <c>bench delta</c>'s measurement with both members on the NATS plugin through a real nats-server: how many updates per
/// second delta sync carries over NATS (printed), with every update arriving.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NatsThroughputTests(NatsServerFixture nats, ITestOutputHelper output) : IClassFixture<NatsServerFixture>
{
    [SkippableFact]
    public void DeltaBench_OverNats_AllUpdatesArriveAndRateIsReported()
    {
        var transport = (TestTransport.NatsTestTransport)TestTransport.Create(TestTransport.NatsName, nats);
        var result = DeltaBenchmark.Run(TimeSpan.FromSeconds(3), rate: null, entries: 100_000, encrypted: true, mtu: 1400, progress: null,
            channels: max => (NatsPlugin.Factory.CreateDatagramChannel(transport.Endpoints(0, 2), max), NatsPlugin.Factory.CreateDatagramChannel(transport.Endpoints(1, 2), max)));
        output.WriteLine("delta sync over NATS (2 members, encrypted, mtu 1400, 100k connections, 3 s): " + string.Join(", ", result.Select(kv => $"{kv.Key}={kv.Value}")));
        Console.WriteLine($"NATS delta throughput: {result["updates_per_second"]} updates/s, p99 {result["latency_p99_ms"]} ms, lost {result["lost_updates"]}");
        Assert.Equal(0L, result["lost_updates"]);
        // A floor far below what loopback gives (hundreds of thousands per second): it catches a stalled transport, not a slow machine.
        Assert.True((double)result["updates_per_second"] > 20_000, $"only {result["updates_per_second"]} updates/s");
    }
}
