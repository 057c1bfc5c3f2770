namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>The shipped trace-replay plugin loaded from disk, driven in-process: event order, horizon, pacing, bad input, sink.</summary>
public sealed class TraceReplayPluginTests : IDisposable
{
    private const string Header = "start,duration,proto,src,sport,dst,dport,service,bytes_out,bytes_in,pkts_out,pkts_in";
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-replay-").FullName;
    private readonly PluginCatalog _catalog = PluginCatalog.Load(PluginFiles.ShippedPluginDirectory);

    public void Dispose()
    {
        _catalog.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Source_SmallTrace_ReplaysInTimeOrderUntilLastStartPacedBySpeed()
    {
        var trace = Write("""
            # four connections, not in start order
            1000.0,0.5,6,10.0.0.1,40000,10.0.0.2,443,web,100,200,2,3
            1000.2,0,17,10.0.0.3,5353,10.0.0.4,53,dns,10,20,1,1
            1000.1,100,6,AS786,1,AS15169,443,benign,5,6,1,1
            1001.0,5,6,10.0.0.5,40001,10.0.0.6,22,ssh,7,8,1,1
            """);
        var source = CreateSource($$"""{"trace": {{JsonSerializer.Serialize(trace)}}, "speed": 2}""")!;
        var sink = new RecordingSink();
        var clock = Stopwatch.StartNew();
        await source.RunAsync(sink, CancellationToken.None);
        long elapsedMs = clock.ElapsedMilliseconds;

        var a = ConnectionKey.Create(IPAddress.Parse("10.0.0.1"), 40000, IPAddress.Parse("10.0.0.2"), 443, 6);
        var b = ConnectionKey.Create(IPAddress.Parse("10.0.0.3"), 5353, IPAddress.Parse("10.0.0.4"), 53, 17);
        var c = ConnectionKey.Create(IPAddress.Parse("240.0.3.18"), 1, IPAddress.Parse("240.0.59.65"), 443, 6); // AS786, AS15169
        var d = ConnectionKey.Create(IPAddress.Parse("10.0.0.5"), 40001, IPAddress.Parse("10.0.0.6"), 22, 6);
        Assert.Equal(
            [(ConnectionEventKind.New, a), (ConnectionEventKind.New, c), (ConnectionEventKind.New, b), (ConnectionEventKind.Destroy, b),
             (ConnectionEventKind.Update, a), (ConnectionEventKind.Destroy, a), (ConnectionEventKind.New, d)],
            sink.Events.Select(e => (e.Kind, e.Key)).ToList());
        var destroyA = sink.Events[5];
        Assert.True(destroyA.HasCounters);
        Assert.Equal(new ConnectionCounters(2, 100, 3, 200), destroyA.Counters);
        Assert.Equal(ProtocolState.TcpEstablished, sink.Events[0].Entry.State);
        Assert.Equal(1_000_000L, sink.Events[0].Entry.CreatedMs);
        // The last start is 1 s of trace after the first: at speed 2, half a second.
        Assert.InRange(elapsedMs, 450, 5000);
        var counters = ((IDataPlaneStatus)source).GetCounters();
        Assert.Equal(2, counters["live_connections"]);
        Assert.Equal(7, counters["events_submitted"]);
        Assert.Equal(1, counters["finished"]);
    }

    [Fact]
    public void Source_BadLine_RefusedNamingLineAndColumn()
    {
        var trace = Write("""
            1000.0,0.5,6,10.0.0.1,99999,10.0.0.2,443,web,100,200,2,3
            """);
        var ex = Assert.ThrowsAny<ArgumentException>(() => CreateSource($$"""{"trace": {{JsonSerializer.Serialize(trace)}}}"""));
        Assert.Contains($"{trace}:2: sport: expected an integer 0-65535, found '99999'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Factory_NoTraceSetting_SinkOnlyAndSinkKeepsCommittedConnections()
    {
        Assert.True(_catalog.TryGetDataPlane("trace-replay", out var factory, out _));
        var context = new DataPlaneContext(2, null);
        Assert.Null(factory.CreateSource(context));
        var sink = factory.CreateSink(context);
        var entry = new ConnectionEntry();
        sink.Commit([new(ConnectionKey.IPv4(1, 2, 3, 4, 6), entry), new(ConnectionKey.IPv4(5, 6, 7, 8, 17), entry)]);
        var counters = Assert.IsAssignableFrom<IDataPlaneStatus>(sink).GetCounters();
        Assert.Equal(2, counters["committed_connections"]);
        Assert.Equal(1, counters["commits"]);
    }

    private IConnectionSource? CreateSource(string settings)
    {
        Assert.True(_catalog.TryGetDataPlane("trace-replay", out var factory, out _));
        return factory.CreateSource(new DataPlaneContext(1, JsonDocument.Parse(settings).RootElement.Clone()));
    }

    private string Write(string rows)
    {
        var path = Path.Combine(_dir, "trace.csv");
        File.WriteAllText(path, Header + "\n" + rows + "\n");
        return path;
    }

    /// <summary>Records what the source submits (the node's engine in production; the process tests use the real one).</summary>
    private sealed class RecordingSink : IConnectionEventSink
    {
        public List<ConnectionEvent> Events { get; } = [];

        public int PendingCount => 0;

        public void Submit(ReadOnlySpan<ConnectionEvent> changes) => Events.AddRange(changes);
    }
}
