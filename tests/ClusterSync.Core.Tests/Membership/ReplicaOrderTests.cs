namespace ClusterSync.Core.Tests.Membership;

public class ReplicaOrderTests
{
    private static ConnectionKey K(ushort port) => ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, port, 21, 6);

    private static KeyValuePair<ConnectionKey, ConnectionEntry> E(ushort port, ushort master = 0)
        => new(K(port), new ConnectionEntry { Version = port, Master = master == 0 ? default : K(master) });

    private static ushort[] Ports(List<KeyValuePair<ConnectionKey, ConnectionEntry>> list) => [.. list.Select(kv => kv.Key.SourcePort)];

    [Fact]
    public void MastersFirst_NoRelatedEntries_KeepsOrder()
    {
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>> { E(3), E(1), E(2) };

        ReplicaOrder.MastersFirst(list);

        Assert.Equal([3, 1, 2], Ports(list));
    }

    [Fact]
    public void MastersFirst_RelatedBeforeMasters_MovesRelatedAfterStableByDepth()
    {
        // 10 ← 11 ← 12 (an expectation of an expectation), 20 ← 21, 30 alone, 40's master is not in the replica.
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>
        {
            E(12, master: 11), E(21, master: 20), E(11, master: 10), E(40, master: 99), E(10), E(30), E(20),
        };

        ReplicaOrder.MastersFirst(list);

        Assert.Equal([10, 30, 20, 21, 11, 40, 12], Ports(list));
    }

    [Fact]
    public void MastersFirst_CyclicMasters_Terminates()
    {
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>> { E(1, master: 2), E(2, master: 1), E(3) };

        ReplicaOrder.MastersFirst(list);

        Assert.Equal(3, list[0].Key.SourcePort);
        Assert.Equal(3, list.Count);
    }

    [Fact]
    public void MastersFirst_EveryEntryRelated_StillOrdered()
    {
        // 11's master 10 is not in the replica: depth 1; 12 follows 11.
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>> { E(12, master: 11), E(11, master: 10) };

        ReplicaOrder.MastersFirst(list);

        Assert.Equal([11, 12], Ports(list));
    }

    [Fact]
    public void MastersFirst_ChainDeeperThanMaxDepth_DeeperEntriesStayAtMaxDepthInInputOrder()
    {
        // 1 ← 2 ← ... ← 11: 9 is at depth 8, 10 and 11 would be at 9 and 10 and stay at 8, after 9 in the input.
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>> { E(11, master: 10), E(10, master: 9), E(9, master: 8) };
        list.AddRange(Enumerable.Range(2, 7).Select(p => E((ushort)p, master: (ushort)(p - 1))));
        list.Add(E(1));

        ReplicaOrder.MastersFirst(list);

        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 11, 10, 9], Ports(list));
    }

    [Fact]
    public void MastersFirst_Null_Throws() => Assert.Throws<ArgumentNullException>(() => ReplicaOrder.MastersFirst(null!));
}
