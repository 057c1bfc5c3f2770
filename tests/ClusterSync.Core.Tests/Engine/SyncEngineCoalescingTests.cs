namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// Coalescing: changes wait in the table (a pending mark and a slot queue) until the sender drains them, so a
/// connection changed many times before the drain is sent once, in its latest state.
/// </summary>
public sealed class SyncEngineCoalescingTests : IDisposable
{
    private readonly EnginePair _pair = new(startSender: false);

    public void Dispose() => _pair.Dispose();

    private List<ConnectionEvent> StartAndCollect(int records)
    {
        _pair.Sender.Start();
        return _pair.WaitForRecords(records);
    }

    [Fact]
    public void Submit_ManyChangesBeforeDrain_OneRecordPerConnectionWithLatestState()
    {
        var a = EngineKit.Tcp(443, 1001);
        var b = EngineKit.Tcp(443, 1002);
        _pair.Sender.Submit(EngineKit.New(a));
        _pair.Sender.Submit(EngineKit.New(b));
        _pair.Sender.Submit(EngineKit.Update(a, ProtocolState.TcpEstablished));
        _pair.Sender.Submit(EngineKit.Update(a, ProtocolState.TcpFinWait));
        _pair.Sender.Submit(EngineKit.Update(a, ProtocolState.TcpTimeWait, timeoutSeconds: 120));

        Assert.Equal(2, _pair.Sender.PendingCount);
        Assert.Equal(3, _pair.Sender.Counters.UpdatesCoalesced);

        var sent = StartAndCollect(2);
        Assert.Equal(2, sent.Count);
        var ra = Assert.Single(sent, r => r.Key == a);
        Assert.Equal(ConnectionEventKind.New, ra.Kind); // never sent before: still a New
        Assert.Equal(ProtocolState.TcpTimeWait, ra.Entry.State);
        Assert.Equal(120u, ra.Entry.TimeoutSeconds);
        Assert.True(_pair.Sender.TryGetEntry(a, out var local));
        Assert.Equal(local.Version, ra.Entry.Version);
        Assert.Single(sent, r => r.Key == b);
    }

    [Fact]
    public void Submit_NewUpdateDestroyBeforeDrain_OnlyTheDestroyIsSent()
    {
        var a = EngineKit.Tcp(443, 2001);
        _pair.Sender.Submit(EngineKit.New(a));
        _pair.Sender.Submit(EngineKit.Update(a, ProtocolState.TcpEstablished));
        _pair.Sender.Submit(EngineKit.Destroy(a));

        var record = Assert.Single(StartAndCollect(1));
        Assert.Equal(ConnectionEventKind.Destroy, record.Kind);
        Assert.Equal(a, record.Key);
        Assert.True(_pair.Sender.TryGetEntry(a, out var tombstone));
        Assert.Equal(tombstone.Version, record.Entry.Version);
    }

    [Fact]
    public void Submit_AfterSent_NextChangeIsAnUpdate()
    {
        var a = EngineKit.Tcp(443, 3001);
        _pair.Sender.Start();
        _pair.SubmitAndCapture(EngineKit.New(a));
        _pair.SubmitAndCapture(EngineKit.Update(a, ProtocolState.TcpEstablished));
        var sent = _pair.SentRecords();
        Assert.Equal([ConnectionEventKind.New, ConnectionEventKind.Update], sent.Select(r => r.Kind));
        Assert.True(sent[1].Entry.Version > sent[0].Entry.Version);
    }

    [Fact]
    public void Submit_DestroyThenNewLifeBeforeDrain_PeerEndsWithTheNewLife()
    {
        var a = EngineKit.Tcp(443, 4001);
        _pair.Sender.Start();
        foreach (var d in new[] { _pair.SubmitAndCapture(EngineKit.New(a)) })
        {
            Assert.Equal(ClusterSync.Protocol.DropReason.None, _pair.Feed(d));
        }

        // Destroy and re-create the same 5-tuple in one batch: the peer must end with the new connection.
        _pair.Sender.Submit([EngineKit.Destroy(a), EngineKit.New(a, state: ProtocolState.TcpSynReceived)]);
        _pair.WaitForRecords(2);
        foreach (var d in _pair.SenderChannel.DataTo(0).Skip(1))
        {
            _pair.Feed(d);
        }

        Assert.True(_pair.Receiver.TryGetEntry(a, out var replica));
        Assert.True(_pair.Sender.TryGetEntry(a, out var local));
        Assert.True(local.SameState(replica));
        Assert.Equal(ProtocolState.TcpSynReceived, replica.State);
        Assert.Equal(ConnectionStatus.None, replica.Status & ConnectionStatus.Tombstone);
    }

    [Fact]
    public void Submit_DelayedKeyReusedWhileItsDestroyIsQueued_DestroyStillSentAndNewLifeAnnouncedLater()
    {
        var web = EngineKit.Tcp(80, 5001); // delayed 3 s in the test policy
        _pair.Sender.Submit(EngineKit.New(web));
        _pair.Time.Advance(TimeSpan.FromSeconds(4));
        _pair.Sender.OnTick(); // announced: it lived past its delay
        _pair.Sender.Submit(EngineKit.Destroy(web));
        _pair.Sender.Submit(EngineKit.New(web, state: ProtocolState.TcpSynReceived)); // a new life, delayed again

        var first = StartAndCollect(1);
        var destroy = Assert.Single(first);
        Assert.Equal(ConnectionEventKind.Destroy, destroy.Kind);
        foreach (var d in _pair.SenderChannel.DataTo(0))
        {
            _pair.Feed(d);
        }

        Assert.Empty(_pair.Receiver.SnapshotTable()); // only a tombstone on the peer

        _pair.Time.Advance(TimeSpan.FromSeconds(4)); // the new life passes its delay: announced, newer than the tombstone
        _pair.WaitForRecords(2);
        var announce = _pair.SentRecords()[1];
        Assert.Equal(ConnectionEventKind.New, announce.Kind);
        Assert.True(announce.Entry.Version > destroy.Entry.Version);
        foreach (var d in _pair.SenderChannel.DataTo(0).Skip(1))
        {
            Assert.Equal(ClusterSync.Protocol.DropReason.None, _pair.Feed(d));
        }

        Assert.True(_pair.Receiver.TryGetEntry(web, out var replica));
        Assert.Equal(ProtocolState.TcpSynReceived, replica.State);
    }
}
