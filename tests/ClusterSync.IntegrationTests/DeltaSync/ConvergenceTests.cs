using ClusterSync.Protocol;

namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// Members replicate a workload and end with identical tables — one suite, run against every transport: the built-in UDP
/// one on loopback and the NATS transport plugin (loaded from its built assembly) through a real nats-server. Loss,
/// duplication and reordering are injected between the engine and the transport, so both carry the same faults.
/// </summary>
public sealed class ConvergenceTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int Changes = 100_000;
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(60);

    [SkippableTheory]
    [InlineData(TestTransport.UdpName)]
    [InlineData(TestTransport.NatsName)]
    public void TwoMembers_NoLoss_TablesIdentical(string transport)
    {
        using var cluster = new LoopbackCluster(2, transport: TestTransport.Create(transport, nats));
        LoopbackCluster.Drive(cluster.Members[0], Changes, seed: 1, population: 20_000);
        LoopbackCluster.AssertIdentical(cluster.Members[0], cluster.Members[1], s_settle);
        Assert.True(cluster.Members[0].TableCount > 1000);
        var sender = cluster.Members[0].Counters;
        var receiver = cluster.Members[1].Counters;
        Assert.Equal(0, receiver.ResyncNeeded);
        // Nothing injected, but a loaded machine still loses datagrams: a starved receiver's socket buffer overflows
        // (the send window is larger than it), the receiver NACKs the gap, and a resend that overtakes a slow first
        // resend arrives twice. The only drop such a link explains is a duplicate of a resent datagram; every other
        // reason (malformed, unauthentic, outside the window, ...) is a fault.
        var drops = Enum.GetValues<DropReason>().Where(r => receiver.DropsFor(r) != 0).Select(r => $"{r} {receiver.DropsFor(r)}").ToList();
        string counts = $"drops: [{string.Join(", ", drops)}], sender retransmissions {sender.Retransmissions}";
        Assert.True(receiver.TotalDrops == receiver.DropsFor(DropReason.Replay), counts);
        Assert.True(receiver.DropsFor(DropReason.Replay) <= sender.Retransmissions, counts);
    }

    [SkippableTheory]
    [InlineData(TestTransport.UdpName, 0.05)]
    [InlineData(TestTransport.UdpName, 0.20)]
    [InlineData(TestTransport.NatsName, 0.05)]
    [InlineData(TestTransport.NatsName, 0.20)]
    public void TwoMembers_LossDuplicationReordering_TablesIdentical(string transport, double loss)
    {
        using var cluster = new LoopbackCluster(2, transport: TestTransport.Create(transport, nats), faults: f =>
        {
            f.DropRate = loss;
            f.DuplicateRate = 0.05;
            f.ReorderRate = 0.05;
        });
        LoopbackCluster.Drive(cluster.Members[0], Changes, seed: 2, population: 20_000);
        LoopbackCluster.AssertIdentical(cluster.Members[0], cluster.Members[1], s_settle);
        var sender = cluster.Members[0].Counters;
        var receiver = cluster.Members[1].Counters;
        Assert.True(cluster.Faults[0].Dropped > 0 && cluster.Faults[0].Duplicated > 0 && cluster.Faults[0].Reordered > 0);
        Assert.True(sender.Retransmissions > 0, "losses must have been repaired by retransmission");
        Assert.True(receiver.UpdatesApplied >= 20_000, $"only {receiver.UpdatesApplied} updates crossed the wire");
        Assert.True(receiver.DropsFor(DropReason.Replay) > 0, "duplicates must have been rejected by the replay window");
        Assert.Equal(0, receiver.ResyncNeeded);
    }

    [SkippableTheory]
    [InlineData(TestTransport.UdpName, 0.0)]
    [InlineData(TestTransport.UdpName, 0.05)]
    [InlineData(TestTransport.UdpName, 0.20)]
    [InlineData(TestTransport.NatsName, 0.0)]
    [InlineData(TestTransport.NatsName, 0.05)]
    [InlineData(TestTransport.NatsName, 0.20)]
    public async Task ThreeMembers_AllProducing_TablesIdentical(string transport, double loss)
    {
        using var cluster = new LoopbackCluster(3, transport: TestTransport.Create(transport, nats), faults: f =>
        {
            f.DropRate = loss;
            f.DuplicateRate = loss > 0 ? 0.02 : 0;
            f.ReorderRate = loss > 0 ? 0.02 : 0;
        });
        var drivers = cluster.Members.Select((m, i) => Task.Run(() =>
            LoopbackCluster.Drive(m, Changes / 3 + 1, seed: 10 + i, population: 8_000, addressBase: (uint)(0x0A00_0000 + (i << 20))))).ToArray();
        await Task.WhenAll(drivers);
        Assert.True(LoopbackCluster.WaitUntil(() =>
                LoopbackCluster.Differences(cluster.Members[0], cluster.Members[1]) == 0
                && LoopbackCluster.Differences(cluster.Members[0], cluster.Members[2]) == 0, s_settle),
            $"differences: {LoopbackCluster.Differences(cluster.Members[0], cluster.Members[1])}, {LoopbackCluster.Differences(cluster.Members[0], cluster.Members[2])}");
        Assert.All(cluster.Members, m => Assert.Equal(0, m.Counters.ResyncNeeded));
        // Every member owns a third of the table.
        var owners = cluster.Members[2].SnapshotTable().GroupBy(kv => kv.Value.Owner).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, owners.Count);
    }

    [SkippableTheory]
    [InlineData(TestTransport.UdpName)]
    [InlineData(TestTransport.NatsName)]
    public void ThreeMembers_OneWithWrongKey_NothingAppliedAndAllCounted(string transport)
    {
        var good = ClusterKey.Generate();
        var wrong = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(3, keys: i => i == 2 ? wrong : good, transport: TestTransport.Create(transport, nats));
        LoopbackCluster.Drive(cluster.Members[0], Changes, seed: 3, population: 20_000);
        LoopbackCluster.AssertIdentical(cluster.Members[0], cluster.Members[1], s_settle);
        var outsider = cluster.Members[2];
        Assert.True(LoopbackCluster.WaitUntil(() => outsider.Counters.DropsFor(DropReason.AuthenticationFailed) >= cluster.Members[0].Counters.DatagramsSent, s_settle),
            $"auth failures {outsider.Counters.DropsFor(DropReason.AuthenticationFailed)} < datagrams sent {cluster.Members[0].Counters.DatagramsSent}");
        Assert.Equal(0, outsider.TableCount);
        Assert.Equal(0, outsider.Counters.UpdatesApplied);
        // And the good members reject the outsider's heartbeats and acks.
        Assert.True(LoopbackCluster.WaitUntil(() => cluster.Members[0].Counters.DropsFor(DropReason.AuthenticationFailed) > 0, s_settle));
        Assert.Equal(0, cluster.Members[1].Counters.UpdatesStale);
    }
}
