namespace ClusterSync.Core.Tests.Engine;

/// <summary>The policy gate of the sending member: what goes out, and when, per service class.</summary>
public sealed class SyncEnginePolicyGateTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    [Fact]
    public void Submit_DelayedClassDestroyedBeforeDelay_SendsNothing()
    {
        var key = EngineKit.Tcp(80);
        _pair.Sender.Submit(EngineKit.New(key));
        Assert.Equal(1, _pair.Sender.Counters.DelayedScheduled);

        _pair.Time.Advance(TimeSpan.FromSeconds(1));
        _pair.Sender.Submit(EngineKit.Update(key, ProtocolState.TcpEstablished));
        _pair.Time.Advance(TimeSpan.FromSeconds(1.5));
        _pair.Sender.Submit(EngineKit.Destroy(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(5)); // well past the delay: the timer runs OnTick
        _pair.Sender.OnTick();

        var records = _pair.FlushWithSentinel(50001);

        Assert.DoesNotContain(records, r => r.Key == key);
        Assert.Single(records);
        Assert.Single(_pair.SenderChannel.DataTo(0));
        Assert.Equal(1, _pair.Sender.Counters.DelayedSuppressed);
        Assert.Equal(0, _pair.Sender.Counters.DelayedAnnounced);
        Assert.False(_pair.Sender.TryGetEntry(key, out _));
    }

    [Fact]
    public void Submit_DelayedClassOnlyEverDestroyedEarly_ZeroDataDatagrams()
    {
        var key = EngineKit.Tcp(80, sourcePort: 41000);
        _pair.Sender.Submit(EngineKit.New(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(2.9));
        _pair.Sender.Submit(EngineKit.Destroy(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(5));
        _pair.Sender.OnTick();

        // Heartbeats went out (the control timer ran), so the sender is alive, yet not one data datagram.
        Assert.True(_pair.SenderChannel.WaitUntil(c => c.SentTo(0).Count > 0, TimeSpan.FromSeconds(10)));
        Assert.Empty(_pair.SenderChannel.DataTo(0));
        Assert.Equal(0UL, _pair.Sender.LastDataSequence);
        Assert.Equal(1, _pair.Sender.Counters.DelayedSuppressed);
    }

    [Fact]
    public void Submit_DelayedClassLivesPastDelay_AnnouncedOnceAsNew()
    {
        var key = EngineKit.Tcp(80, sourcePort: 42000);
        _pair.Sender.Submit(EngineKit.New(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(1));
        _pair.Sender.Submit(EngineKit.Update(key, ProtocolState.TcpEstablished));
        _pair.Time.Advance(TimeSpan.FromSeconds(1));

        // Two seconds in: not announced yet.
        Assert.DoesNotContain(_pair.FlushWithSentinel(50002), r => r.Key == key);

        _pair.Time.Advance(TimeSpan.FromSeconds(1.5)); // 3.5 s: due
        _pair.Sender.OnTick();
        Assert.True(
            _pair.SenderChannel.WaitUntil(_ => _pair.SentRecords().Any(r => r.Key == key), TimeSpan.FromSeconds(10)),
            "delayed connection was never announced");

        _pair.Time.Advance(TimeSpan.FromSeconds(10));
        _pair.Sender.OnTick();
        _pair.Sender.OnTick();
        var records = _pair.FlushWithSentinel(50003);

        var announced = Assert.Single(records, r => r.Key == key);
        Assert.Equal(ConnectionEventKind.New, announced.Kind);
        Assert.Equal(ProtocolState.TcpEstablished, announced.Entry.State); // latest state
        Assert.Equal(1, _pair.Sender.Counters.DelayedAnnounced);
        Assert.Equal(0, _pair.Sender.Counters.DelayedSuppressed);

        Assert.True(_pair.Sender.TryGetEntry(key, out var local));
        Assert.True(local.SameState(announced.Entry));
    }

    [Fact]
    public void Submit_DelayedClassUpdatedAfterAnnouncement_SendsUpdate()
    {
        var key = EngineKit.Tcp(80, sourcePort: 43000);
        _pair.Sender.Submit(EngineKit.New(key));
        _pair.Time.Advance(TimeSpan.FromSeconds(4));
        _pair.Sender.OnTick();
        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.SentRecords().Any(r => r.Key == key), TimeSpan.FromSeconds(10)));

        _pair.Sender.Submit(EngineKit.Update(key, ProtocolState.TcpFinWait));
        var records = _pair.FlushWithSentinel(50004).Where(r => r.Key == key).ToList();

        Assert.Equal([ConnectionEventKind.New, ConnectionEventKind.Update], records.Select(r => r.Kind));
        Assert.Equal(ProtocolState.TcpFinWait, records[1].Entry.State);
    }

    [Fact]
    public void Submit_NeverClass_NeverSentAndCounted()
    {
        var key = EngineKit.Udp(53);
        _pair.Sender.Submit(EngineKit.New(key, state: ProtocolState.UdpUnreplied));
        _pair.Sender.Submit(EngineKit.Update(key, ProtocolState.UdpReplied));
        _pair.Time.Advance(TimeSpan.FromSeconds(10));
        _pair.Sender.OnTick();
        _pair.Sender.Submit(EngineKit.Destroy(key));

        var records = _pair.FlushWithSentinel(50005);

        Assert.DoesNotContain(records, r => r.Key == key);
        Assert.Equal(1, _pair.Sender.Counters.NeverSynced);
        Assert.Equal(0, _pair.Sender.Counters.DelayedSuppressed);
    }

    [Fact]
    public void Submit_NeverClass_KeptInLocalTable()
    {
        var key = EngineKit.Udp(53, sourcePort: 44000);

        _pair.Sender.Submit(EngineKit.New(key, state: ProtocolState.UdpUnreplied));

        Assert.True(_pair.Sender.TryGetEntry(key, out var e));
        Assert.Equal(ProtocolState.UdpUnreplied, e.State);
        Assert.Equal(1, e.Owner);
    }

    [Fact]
    public void Submit_FullClass_SentAtOnceAsNew()
    {
        var key = EngineKit.Tcp(443, sourcePort: 45000);

        var datagram = _pair.SubmitAndCapture(EngineKit.New(key, state: ProtocolState.TcpSynReceived));

        var record = Assert.Single(EngineKit.Decode(datagram, _pair.Key, 1, _pair.Sender.Epoch));
        Assert.Equal(key, record.Key);
        Assert.Equal(ConnectionEventKind.New, record.Kind);
        Assert.Equal(ProtocolState.TcpSynReceived, record.Entry.State);
        Assert.Equal(1, record.Entry.Owner);
        Assert.Equal(_pair.Sender.NowMs(), record.Entry.CreatedMs);
        Assert.Equal(0, _pair.Sender.Counters.DelayedScheduled);
    }

    [Fact]
    public void Submit_UnclassifiedConnection_GetsDefaultClassAndIsSent()
    {
        var key = EngineKit.Tcp(9999, sourcePort: 46000);

        var datagram = _pair.SubmitAndCapture(EngineKit.New(key));

        var record = Assert.Single(EngineKit.Decode(datagram, _pair.Key, 1, _pair.Sender.Epoch));
        Assert.Equal(_pair.Sender.Catalog.DefaultId, record.Entry.ServiceClass);
    }

    [Fact]
    public void Submit_DestroyOfUnknownConnection_CountedNotSent()
    {
        var key = EngineKit.Tcp(443, sourcePort: 47000);
        _pair.Sender.Submit(EngineKit.Destroy(key));

        var records = _pair.FlushWithSentinel(50006);

        Assert.DoesNotContain(records, r => r.Key == key);
        Assert.Equal(1, _pair.Sender.Counters.UnknownDestroys);
        Assert.False(_pair.Sender.TryGetEntry(key, out _));
    }
}
