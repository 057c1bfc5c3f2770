using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// The plugin's sink commit and its source (issue 15): the source is not started (and submits nothing) until the commit
/// into the plugin's sink has finished, failed or timed out; <c>/status</c> reports the commit; a hanging sink is
/// bounded by the commit timeout and never holds up the caller (the membership controller's thread).
/// </summary>
public sealed class NodeDataPlaneCommitTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly UdpDatagramChannel _channel = new(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
    private readonly SyncEngine _engine;
    private readonly CancellationTokenSource _stop = new();

    public NodeDataPlaneCommitTests()
    {
        _engine = new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [], TableCapacity = 1 << 10, Insecure = true }, _channel, null);
    }

    [Fact]
    public async Task Start_CommitInProgress_SourceStartsOnlyAfterCommitFinished()
    {
        using var release = new ManualResetEventSlim(false);
        var sink = new GatedSink(release);
        var source = new RecordingSource(sink);
        using var plane = NodeDataPlane.ForTests(source, sink, TimeSpan.FromMinutes(5), TimeProvider.System);
        bool active = false;
        plane.Start(_engine, () => Volatile.Read(ref active), _stop.Token);

        // As the membership controller promotes: commit (returns at once), then publish Active.
        var committing = Task.Run(() => plane.WrapSink(new InMemoryReplicaSink()).Commit(Replica(3)));
        await committing.WaitAsync(Bound);   // the commit into the plugin's sink must not hold up the caller
        Assert.True(sink.Entered.Wait(Bound));
        Volatile.Write(ref active, true);

        var during = plane.GetStatus();
        Assert.True(during.SinkCommitting);
        Assert.False(during.Serving);
        Assert.Equal("waiting", during.SourceState);
        Assert.Equal(0, during.SinkCommitFinishedUnixMs);
        Assert.False(source.Started.Wait(TimeSpan.FromMilliseconds(300)), "the source must wait for the commit");

        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        release.Set();
        Assert.True(source.Started.Wait(Bound));
        Assert.True(source.SinkHadFinished, "the source started before the sink's commit finished");
        var after = plane.GetStatus();
        Assert.False(after.SinkCommitting);
        Assert.True(after.Serving);
        Assert.Equal(1, after.SinkCommits);
        Assert.Equal(3, after.SinkLastCommitted);
        Assert.True(after.SinkLastCommitMs > 0);
        Assert.InRange(after.SinkCommitFinishedUnixMs, before - 1000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000);
        Assert.Equal(0, after.SinkCommitTimeouts);
        Assert.Null(after.Failure);
        _stop.Cancel();
        plane.Stop(Bound);
    }

    [Fact]
    public void Commit_SinkHangs_TimesOutCountedReportedAndSourceRunsAnyway()
    {
        using var release = new ManualResetEventSlim(false);
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
        var sink = new GatedSink(release);
        var source = new RecordingSource(sink);
        using var plane = NodeDataPlane.ForTests(source, sink, TimeSpan.FromSeconds(30), time);
        bool active = true;
        plane.Start(_engine, () => Volatile.Read(ref active), _stop.Token);
        plane.WrapSink(new InMemoryReplicaSink()).Commit(Replica(5));
        Assert.True(sink.Entered.Wait(Bound));
        Assert.True(plane.Committing);

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.True(plane.Committing);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(plane.Committing);
        Assert.True(source.Started.Wait(Bound));
        Assert.False(source.SinkHadFinished);

        var status = plane.GetStatus();
        Assert.Equal(1, status.SinkCommitTimeouts);
        Assert.Equal(1_700_000_030_000, status.SinkCommitFinishedUnixMs);
        Assert.Equal(0, status.SinkCommits);
        Assert.Contains("within 30 s", status.Failure, StringComparison.Ordinal);

        // The hung commit finishing late is still counted, once.
        release.Set();
        Assert.True(SpinWait.SpinUntil(() => plane.GetStatus().SinkCommits == 1, Bound));
        Assert.Equal(1, plane.GetStatus().SinkCommitTimeouts);
        _stop.Cancel();
        plane.Stop(Bound);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _engine.Dispose();
        _channel.Dispose();
        _stop.Dispose();
    }

    private static KeyValuePair<ConnectionKey, ConnectionEntry>[] Replica(int n)
    {
        var r = new KeyValuePair<ConnectionKey, ConnectionEntry>[n];
        for (int i = 0; i < n; i++)
        {
            var key = ConnectionKey.IPv4(0x0A00_0001u + (uint)i, 0xC633_6401u, (ushort)(30000 + i), 443, 6);
            r[i] = new(key, ConnectionEvent.Create(ConnectionEventKind.New, key, ProtocolState.TcpEstablished, 3600, 0).Entry);
        }

        return r;
    }

    private sealed class GatedSink(ManualResetEventSlim release) : IReplicaSink
    {
        private int _finished;

        public ManualResetEventSlim Entered { get; } = new(false);

        public bool IsFinished => Volatile.Read(ref _finished) != 0;

        public string Name => "gated-sink";

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
        {
            Entered.Set();
            release.Wait();
            Volatile.Write(ref _finished, 1);
        }
    }

    private sealed class RecordingSource(GatedSink sink) : IConnectionSource
    {
        public ManualResetEventSlim Started { get; } = new(false);

        public bool SinkHadFinished { get; private set; }

        public string Name => "recording-source";

        public Task RunAsync(IConnectionEventSink events, CancellationToken cancellationToken)
        {
            SinkHadFinished = sink.IsFinished;
            Started.Set();
            return Task.Delay(Timeout.Infinite, cancellationToken);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
