using ClusterSync.Connections;
using ClusterSync.Membership;

namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// Issue 13: <c>/failover</c> is polled right after a takeover; it counted the committed table through the by-key view,
/// which built a dictionary of every committed connection on the new Active (about 150 MB at 1,000,000) while it
/// committed into the kernel.
/// </summary>
public sealed class InMemoryReplicaSinkCountTests
{
    private static List<KeyValuePair<ConnectionKey, ConnectionEntry>> Replica(int count)
        => [.. Enumerable.Range(0, count).Select(i => new KeyValuePair<ConnectionKey, ConnectionEntry>(
            ConnectionKey.IPv4(0x0A00_0000u + (uint)(i >> 14), 0xC0A8_0101, (ushort)(1024 + (i & 0x3FFF)), 443, 6), new ConnectionEntry { Version = 1 }))];

    [Fact]
    public void CommittedCountAndEntries_After100kCommitted_NoByKeyViewBuilt()
    {
        var warm = new InMemoryReplicaSink();
        warm.Commit(Replica(4));
        _ = (warm.CommittedCount, warm.CommittedEntries.Count);
        var sink = new InMemoryReplicaSink();
        var replica = Replica(100_000);
        sink.Commit(replica);

        long before = GC.GetAllocatedBytesForCurrentThread();
        int count = sink.CommittedCount;
        var entries = sink.CommittedEntries;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(100_000, count);
        Assert.Same(replica, entries);
        Assert.True(allocated < 1024, $"{allocated:N0} bytes allocated to count the committed table");
    }

    [Fact]
    public void CommittedCount_ConnectionPickedUpByTemplate_Counted()
    {
        var sink = new InMemoryReplicaSink();
        sink.Commit(Replica(3));
        var template = new ClusterSync.Templates.ConnectionTemplate(
            ClusterSync.Templates.TemplateKeys.ShapeOf(ConnectionKey.IPv4(0x0B00_0001, 0xC0A8_0102, 40000, 21, 6)),
            Owner: 1, ServiceClass: 0, Count: 1, LifetimeSeconds: 600, CreatedMs: 1_000, UpdatedMs: 1_000, Version: 1);
        sink.CommitTemplates([template]);

        var accepted = sink.Accept(ConnectionKey.IPv4(0x0B00_0001, 0xC0A8_0102, 40000, 21, 6), 2_000, owner: 2);

        Assert.Equal(ConnectionAcceptance.PickedUpByTemplate, accepted);
        Assert.Equal(4, sink.CommittedCount);
    }
}
