namespace ClusterSync.Core.Tests.Engine;

/// <summary>The policy gate with a per-connection decider (the adaptive mode's hook) and the outcome sink.</summary>
public sealed class SyncEngineDeciderTests : IDisposable
{
    private readonly EnginePair _pair = new();
    private readonly ScriptedDecider _decider = new();
    private readonly RecordingSink _sink = new();

    public SyncEngineDeciderTests()
    {
        _pair.Sender.Decider = _decider;
        _pair.Sender.OutcomeSink = _sink;
    }

    public void Dispose() => _pair.Dispose();

    /// <summary>The pair's sentinel flush, the sentinel decided "now" like any full-class connection.</summary>
    private List<ConnectionEvent> FlushWithSentinel(ushort sentinelPort)
    {
        _decider.Next = SyncDecision.Now();
        return _pair.FlushWithSentinel(sentinelPort);
    }

    [Fact]
    public void Submit_DeciderSaysNowForDelayedClass_AnnouncedAtOnce()
    {
        var key = EngineKit.Tcp(80, sourcePort: 41001); // class short-lived: delayed 3 s by policy
        _decider.Next = SyncDecision.Now(0.9f);
        _pair.Sender.Submit(EngineKit.New(key));

        Assert.Contains(FlushWithSentinel(50001), r => r.Key == key);
        Assert.Equal(0, _pair.Sender.Counters.DelayedScheduled);
        var seen = Assert.Single(_decider.Decided, d => d.Key == key);
        Assert.Equal(SyncPolicyKind.Delayed, seen.ClassPolicy.Kind);
    }

    [Fact]
    public void Submit_DeciderSaysNeverForFullClass_NothingSentAndOutcomeUnsynced()
    {
        var key = EngineKit.Tcp(443, sourcePort: 41002);
        _decider.Next = SyncDecision.Never(0.05f);
        _pair.Sender.Submit(EngineKit.New(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(10));
        _pair.Sender.OnTick();
        _pair.Sender.Submit(EngineKit.Destroy(key));

        Assert.DoesNotContain(FlushWithSentinel(50002), r => r.Key == key);
        var o = Assert.Single(_sink.Outcomes, o => o.Key == key);
        Assert.False(o.Synced);
        Assert.Equal(-1, o.SyncDelayMs);
        Assert.Equal(0, o.Messages);
        Assert.Equal(10_000, o.LifetimeMs);
        Assert.Equal(10_000, o.ExposureMs);
        Assert.Equal(0.05f, o.Score, 0.01f);
        Assert.Equal(ConnectionEndReason.Destroyed, o.Reason);
    }

    [Fact]
    public void OnTick_CheckpointRevisedToHoldLonger_AnnouncedOnlyAtSecondCheckpoint()
    {
        var key = EngineKit.Tcp(8443, sourcePort: 41003);
        _decider.Next = SyncDecision.After(1000, 0.3f);
        _decider.NextRevision = SyncDecision.After(2000);
        _pair.Sender.Submit(EngineKit.New(key));

        _pair.Time.Advance(TimeSpan.FromMilliseconds(1100));
        _pair.Sender.OnTick(); // first checkpoint: revised to wait 2 s more
        Assert.Equal(1, _decider.Revisions);
        Assert.DoesNotContain(FlushWithSentinel(50003), r => r.Key == key);

        _decider.NextRevision = SyncDecision.Now();
        _pair.Time.Advance(TimeSpan.FromMilliseconds(2200));
        _pair.Sender.OnTick(); // second checkpoint: announce
        Assert.Equal(2, _decider.Revisions);
        Assert.Contains(FlushWithSentinel(50004), r => r.Key == key);

        _pair.Time.Advance(TimeSpan.FromSeconds(1));
        _pair.Sender.Submit(EngineKit.Destroy(key));
        var o = Assert.Single(_sink.Outcomes, o => o.Key == key);
        Assert.True(o.Synced);
        Assert.InRange(o.SyncDelayMs, 3000, 3500); // the delay actually applied, on the grid
        Assert.Equal(2, o.Messages); // the announcement and the destroy
        Assert.Equal(4300, o.LifetimeMs);
    }

    [Fact]
    public void OnTick_OwnedConnectionTimesOut_OutcomeExpired()
    {
        var key = EngineKit.Tcp(443, sourcePort: 41004);
        _decider.Next = SyncDecision.Now();
        _pair.Sender.Submit(EngineKit.New(key, timeoutSeconds: 5));
        _pair.Time.Advance(TimeSpan.FromSeconds(7));
        for (int i = 0; i < 2000 && !_sink.Outcomes.Any(o => o.Key == key); i++)
        {
            _pair.Sender.OnTick(); // the sweep walks the table in chunks
        }

        var o = Assert.Single(_sink.Outcomes, o => o.Key == key);
        Assert.Equal(ConnectionEndReason.Expired, o.Reason);
        Assert.Equal(5000, o.LifetimeMs);
        Assert.Equal(1, o.Messages);
    }

    [Fact]
    public void GetExposure_DelayedAndNeverConnections_CountedUntilAnnounced()
    {
        _decider.Next = SyncDecision.After(2000);
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(8080, sourcePort: 41005)));
        _decider.Next = SyncDecision.Never();
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(8080, sourcePort: 41006)));
        _decider.Next = SyncDecision.Now();
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(8080, sourcePort: 41007)));
        _pair.Time.Advance(TimeSpan.FromSeconds(1));

        var x = _pair.Sender.GetExposure();
        Assert.Equal(2, x.Connections);
        Assert.Equal(2.0, x.ExposureSeconds, 3);

        _decider.NextRevision = SyncDecision.Now();
        _pair.Time.Advance(TimeSpan.FromSeconds(1.5));
        _pair.Sender.OnTick();
        Assert.Equal(1, _pair.Sender.GetExposure().Connections);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(3000)]
    [InlineData(30_000)]
    [InlineData(86_400_000)]
    public void DelayGrid_RoundTrip_WithinSevenPercent(int ms)
    {
        int back = DelayGrid.Decode(DelayGrid.Encode(ms));
        Assert.InRange(back, ms * 0.965, ms * 1.035);
    }

    private sealed class ScriptedDecider : ISyncDecider
    {
        public SyncDecision Next { get; set; } = SyncDecision.Now();

        public SyncDecision NextRevision { get; set; } = SyncDecision.Now();

        public int Revisions;

        public ConcurrentQueue<(ConnectionKey Key, SyncPolicy ClassPolicy)> Decided { get; } = new();

        public SyncDecision Decide(in ConnectionKey key, in ConnectionEntry entry, byte serviceClass, SyncPolicy classPolicy)
        {
            Decided.Enqueue((key, classPolicy));
            return Next;
        }

        public SyncDecision Revise(in ConnectionKey key, in ConnectionEntry entry, in ConnectionCounters counters, bool hasCounters, byte serviceClass, long ageMs)
        {
            Interlocked.Increment(ref Revisions);
            return NextRevision;
        }
    }

    private sealed class RecordingSink : IConnectionOutcomeSink
    {
        public ConcurrentQueue<ConnectionOutcome> Outcomes { get; } = new();

        public void OnEnded(in ConnectionOutcome outcome) => Outcomes.Enqueue(outcome);
    }
}
