namespace ClusterSync.Core.Tests.Engine;

/// <summary>Idle expiry driven by the control timer (OnTick), on the owner and on the replica.</summary>
public sealed class SyncEngineExpiryTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    private void TickBoth(int times = 3)
    {
        for (int i = 0; i < times; i++)
        {
            _pair.Sender.OnTick();
            _pair.Receiver.OnTick();
        }
    }

    [Fact]
    public void OnTick_IdlePastTimeout_EntryExpiresOnOwnerAndReplica()
    {
        var shortKey = EngineKit.Tcp(443, 1001);
        var longKey = EngineKit.Tcp(443, 1002);
        var d1 = _pair.SubmitAndCapture(EngineKit.New(shortKey, timeoutSeconds: 5));
        var d2 = _pair.SubmitAndCapture(EngineKit.New(longKey, timeoutSeconds: 3600));
        Assert.Equal(DropReason.None, _pair.Feed(d1));
        Assert.Equal(DropReason.None, _pair.Feed(d2));
        Assert.Equal(2, _pair.Receiver.SnapshotTable().Count);

        _pair.Time.Advance(TimeSpan.FromSeconds(4.9));
        TickBoth();
        Assert.Contains(_pair.Sender.SnapshotTable(), kv => kv.Key == shortKey);
        Assert.Contains(_pair.Receiver.SnapshotTable(), kv => kv.Key == shortKey);

        _pair.Time.Advance(TimeSpan.FromSeconds(1.2)); // 6.1 s idle
        TickBoth();

        Assert.Equal([longKey], _pair.Sender.SnapshotTable(includeTombstones: true).Select(kv => kv.Key));
        Assert.Equal([longKey], _pair.Receiver.SnapshotTable(includeTombstones: true).Select(kv => kv.Key));
        Assert.Equal(1, _pair.Sender.Counters.Expired);
        Assert.Equal(1, _pair.Receiver.Counters.Expired);
    }

    [Fact]
    public void OnTick_UpdatedBeforeTimeout_DoesNotExpire()
    {
        var key = EngineKit.Tcp(443, 2001);
        _pair.Sender.Submit(EngineKit.New(key, timeoutSeconds: 5));

        _pair.Time.Advance(TimeSpan.FromSeconds(4));
        _pair.Sender.Submit(EngineKit.Update(key, ProtocolState.TcpEstablished, timeoutSeconds: 5));
        _pair.Time.Advance(TimeSpan.FromSeconds(4)); // 8 s since New, 4 s since the update
        _pair.Sender.OnTick();

        Assert.True(_pair.Sender.TryGetEntry(key, out _));
        Assert.Equal(0, _pair.Sender.Counters.Expired);

        _pair.Time.Advance(TimeSpan.FromSeconds(2));
        _pair.Sender.OnTick();

        Assert.False(_pair.Sender.TryGetEntry(key, out _));
        Assert.Equal(1, _pair.Sender.Counters.Expired);
    }

    [Fact]
    public void OnTick_TombstoneOnReplica_RemovedAfterTombstoneTtl()
    {
        var key = EngineKit.Tcp(443, 3001);
        Assert.Equal(DropReason.None, _pair.Feed(_pair.SubmitAndCapture(EngineKit.New(key))));
        Assert.Equal(DropReason.None, _pair.Feed(_pair.SubmitAndCapture(EngineKit.Destroy(key))));
        Assert.Single(_pair.Receiver.SnapshotTable(includeTombstones: true));

        _pair.Time.Advance(_pair.Receiver.Options.TombstoneTtl - TimeSpan.FromSeconds(1));
        TickBoth();
        Assert.Single(_pair.Receiver.SnapshotTable(includeTombstones: true));

        _pair.Time.Advance(TimeSpan.FromSeconds(2));
        TickBoth();

        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
        Assert.Empty(_pair.Sender.SnapshotTable(includeTombstones: true));
        Assert.Equal(0, _pair.Receiver.TableCount);
    }
}
