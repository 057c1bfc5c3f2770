using ClusterSync.Cli.Bench;

namespace ClusterSync.IntegrationTests.Transport;

/// <summary>
/// <c>bench delta</c>'s measurement with both members on the NATS plugin through a real nats-server: how many updates per
/// second delta sync carries over NATS (printed), with every update arriving; and what a datagram costs in allocations.
/// Alone in the timing-sensitive collection, so no other test's allocations or CPU are counted.
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

    [SkippableFact]
    public async Task SendReceive_TwentyThousandDatagrams_AllocatesOnlyWhatTheNatsClientForces()
    {
        var transport = (TestTransport.NatsTestTransport)TestTransport.Create(TestTransport.NatsName, nats);
        using var channels = transport.CreateChannels(2);
        var datagram = new byte[1400];
        var buffer = new byte[1500];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        async Task RoundAsync(int count)
        {
            for (int i = 0; i < count; i++)
            {
                await channels[0].SendAsync(datagram, 0, cts.Token);
                if (i % 1024 == 1023)
                {
                    for (int j = 0; j < 1024; j++)
                    {
                        await channels[1].ReceiveAsync(buffer, cts.Token);
                    }
                }
            }
        }

        await RoundAsync(2_048); // warm up: slots, pools, JIT
        long before = GC.GetTotalAllocatedBytes(precise: true);
        await RoundAsync(20_480);
        long perDatagram = (GC.GetTotalAllocatedBytes(precise: true) - before) / 20_480;
        Console.WriteLine($"NATS datagram send+receive: {perDatagram} bytes allocated per datagram (whole process)");
        // The plugin allocates nothing per datagram; what remains is the client's (the subject string it builds per MSG).
        Assert.True(perDatagram < 256, $"{perDatagram} bytes per datagram");
    }
}
