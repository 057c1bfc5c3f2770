namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// Event-socket overruns: after one, the kernel reports ENOBUFS once and then drops silently until the receive queue has
/// been read empty. The source must still end with exactly the kernel's table: every overrun answered by a fresh
/// subscription and a dump, nothing created during that dump lost.
/// </summary>
public sealed partial class ConntrackKernelTests
{
    [NetnsFact]
    public async Task Source_EntriesCreatedWhileResyncDumpRuns_AllAnnounced()
    {
        using var ns = Netns.Create();
        // Another member's commit (a factory of its own, so its events are not our echo) makes the traffic.
        var other = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context("""{ "receiveBufferBytes": 4096 }""")))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");

        // Hold the reader in Submit, overrun its socket with burst A, and hold it again inside the resync dump that
        // answers the overrun (the dump announces A); while it is held there, burst B is created. Part of B lands in
        // buckets the dump has passed: only events can tell of those.
        var a = Enumerable.Range(0, 3000).Select(i => Tcp(i, net: 70)).ToList();
        var b = Enumerable.Range(0, 3000).Select(i => Tcp(i, net: 80)).ToList();
        sink.Hold();
        other.Commit([Tcp(0, net: 60)]);
        Assert.True(Wait.Until(() => sink.IsHolding, Timeout), "the reader was not held");
        sink.HoldWhen(e => (uint)e.Key.SourceLow >> 16 == 0x0A46);   // 10.70.x.x: burst A
        other.Commit(a);
        sink.Release();
        Assert.True(Wait.Until(() => sink.IsHolding && Counter(source, "enobufs") >= 1, Timeout), "not held inside the resync dump");
        Assert.Equal(1, Counter(source, "dumps"));   // the resync dump has not finished
        other.Commit(b);
        sink.Release();

        var expected = new HashSet<ConnectionKey>([Tcp(0, net: 60).Key, .. a.Select(kv => kv.Key), .. b.Select(kv => kv.Key)]);
        Assert.True(Wait.Until(() => sink.Live().SetEquals(expected), Timeout),
            $"announced {sink.Live().Count} live, expected {expected.Count}, missing {expected.Except(sink.Live()).Count()}; {Describe(source)}");
        Assert.True(Wait.Until(() => Counter(source, "resyncs") == Counter(source, "enobufs"), Timeout), Describe(source));
        Assert.Equal(expected.Count, KernelCount(ns));
        Assert.Equal(expected.Count, Counter(source, "tracked"));
    }

    [NetnsFact]
    public async Task Source_BurstOverrunsSmallBuffer_AnnouncedSetEqualsKernelTable()
    {
        using var ns = Netns.Create();
        var other = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context("""{ "receiveBufferBytes": 65536 }""")))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");

        // 40 networks of 1,000 connections committed back to back (~0.5 M entries/s, far faster than events are
        // read), every fifth network deleted again right after it was created.
        var expected = new HashSet<ConnectionKey>();
        for (byte net = 100; net < 140; net++)
        {
            var batch = Enumerable.Range(0, 1000).Select(i => Tcp(i, net)).ToList();
            other.Commit(batch);
            if (net % 5 == 0)
            {
                ns.Exec("conntrack", "-D", "-s", string.Create(CultureInfo.InvariantCulture, $"10.{net}.0.0"));
            }
            else
            {
                expected.UnionWith(batch.Select(kv => kv.Key));
            }
        }

        Assert.Equal(expected.Count, KernelCount(ns));
        Assert.True(Wait.Until(() => sink.Live().SetEquals(expected) && Counter(source, "resyncs") == Counter(source, "enobufs"), Timeout),
            $"announced {sink.Live().Count} live, expected {expected.Count}, missing {expected.Except(sink.Live()).Count()}, extra {sink.Live().Except(expected).Count()}; {Describe(source)}");
        Assert.True(Counter(source, "enobufs") >= 1, "the burst did not overrun the socket: the test proves nothing");
        Assert.Equal(expected.Count, Counter(source, "tracked"));
    }

    [NetnsFact]
    public async Task Source_OwnCommitOverrunsEventSocket_ResyncDumpDoesNotReannounceIt()
    {
        using var ns = Netns.Create();
        // A takeover: the factory's source runs and its own sink commits a replica whose NEW events (our echo) flood
        // the event socket; the resync dump that answers the overrun sees the committed entries without a port id.
        var factory = new ConntrackFactory();
        var (source, sink) = ns.Run(() => (factory.CreateSource(Context("""{ "receiveBufferBytes": 65536 }"""))!, factory.CreateSink(Context())));
        var recorder = new RecordingSink();
        await using var running = RunningSource.Start(source, recorder);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");
        var replica = Enumerable.Range(0, 20_000).Select(i => Tcp(i, net: 90)).ToList();
        sink.Commit(replica);
        Assert.Equal(0, Counter(sink, "refused"));

        // Another member's connection, after the commit: announced (the source is alive and caught up).
        var other = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        other.Commit([Tcp(0, net: 91)]);
        Assert.True(Wait.Until(() => recorder.Events.Any(e => e.Key == Tcp(0, net: 91).Key) && Counter(source, "tracked") == 20_001
            && Counter(source, "resyncs") == Counter(source, "enobufs"), Timeout), Describe(source));
        Assert.True(Counter(source, "enobufs") >= 1, "the commit did not overrun the event socket: the test proves nothing");
        var ours = replica.Select(kv => kv.Key).ToHashSet();
        Assert.DoesNotContain(recorder.Events, e => ours.Contains(e.Key));
        Assert.True(Counter(source, "echo_suppressed") >= 20_000, Describe(source));
    }

    private static int KernelCount(Netns ns) => int.Parse(ns.Exec("conntrack", "-C").Trim(), CultureInfo.InvariantCulture);

    private static string Describe(IConnectionSource source)
        => string.Join(", ", ((IDataPlaneStatus)source).GetCounters().Where(kv => kv.Value != 0).Select(kv => $"{kv.Key}={kv.Value}"));
}
