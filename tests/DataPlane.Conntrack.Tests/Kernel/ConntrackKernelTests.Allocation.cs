namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>Issue 13: a commit's allocations do not grow with the replica (the new Active commits 1,000,000 entries while it must keep its heartbeats).</summary>
public sealed partial class ConntrackKernelTests
{
    [NetnsFact]
    public void Sink_CommitOver100kExistingEntries_AllocatesNoListPerEntry()
    {
        const int Entries = 100_000;
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var replica = Enumerable.Range(0, Entries).Select(i => Tcp(i)).ToList();
        sink.Commit(replica); // created; also warms the sink's reused buffers

        // Again: every create answered EEXIST, every entry updated. Before the chunked commit this kept a list of every
        // EEXIST and every update (two growing lists of 100,000 indexes) and new batch arrays per pass: about 2.6 MB.
        long before = GC.GetAllocatedBytesForCurrentThread();
        sink.Commit(replica);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(Entries, Counter(sink, "updated"));
        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(2 * Entries, Counter(sink, "committed"));
        Assert.True(allocated < 512 * 1024, $"the second commit of {Entries:N0} entries allocated {allocated:N0} bytes");
    }
}
