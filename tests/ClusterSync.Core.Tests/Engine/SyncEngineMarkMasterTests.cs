namespace ClusterSync.Core.Tests.Engine;

/// <summary>The conntrack mark and the master of a related connection through delta sync, full sync and the table.</summary>
public sealed class SyncEngineMarkMasterTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    private static readonly ConnectionKey Control = EngineKit.Tcp(21, sourcePort: 40100);
    private static readonly ConnectionKey Data = EngineKit.Tcp(50123, sourcePort: 40101);

    private static ConnectionEvent Related(ConnectionEventKind kind = ConnectionEventKind.New, uint mark = 0x42)
    {
        var e = kind == ConnectionEventKind.New ? EngineKit.New(Data, state: ProtocolState.TcpEstablished) : EngineKit.Update(Data, ProtocolState.TcpEstablished);
        e.Entry.Status = ConnectionStatus.Expected | ConnectionStatus.SeenReply;
        e.Entry.Mark = mark;
        e.Entry.Master = Control;
        return e;
    }

    private void Replicate()
    {
        foreach (var d in _pair.SenderChannel.DataTo(0))
        {
            _pair.Feed(d);
        }
    }

    [Fact]
    public void Submit_RelatedEntryWithMark_ReplicaHoldsMasterAndMark()
    {
        var control = EngineKit.New(Control, state: ProtocolState.TcpEstablished);
        control.Entry.Mark = 7;
        _pair.SubmitAndCapture(control);
        _pair.SubmitAndCapture(Related());
        Replicate();

        Assert.True(_pair.Receiver.TryGetEntry(Data, out var data));
        Assert.Equal(Control, data.Master);
        Assert.Equal(0x42u, data.Mark);
        Assert.True(_pair.Receiver.TryGetEntry(Control, out var master));
        Assert.False(master.HasMaster);
        Assert.Equal(7u, master.Mark);
        var snapshot = _pair.Receiver.SnapshotTable().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(Control, snapshot[Data].Master);
    }

    [Fact]
    public void Submit_MarkChangedAndMasterKept_ReplicaFollows()
    {
        _pair.SubmitAndCapture(Related());
        _pair.SubmitAndCapture(Related(ConnectionEventKind.Update, mark: 0x99));
        Replicate();

        Assert.True(_pair.Receiver.TryGetEntry(Data, out var data));
        Assert.Equal(0x99u, data.Mark);
        Assert.Equal(Control, data.Master);
    }

    [Fact]
    public void Submit_PlainEntry_DatagramCarriesNoExtension()
    {
        var plain = _pair.SubmitAndCapture(EngineKit.New(Control, state: ProtocolState.TcpEstablished));
        var related = _pair.SubmitAndCapture(Related(mark: 0));

        // IPv4, no NAT, no counters: a 50-byte record (+ 2-byte count, header, tag); the related one adds 3 + 16.
        Assert.Equal(PacketHeader.Size + 2 + 50 + PacketProtection.TagSize, plain.Length);
        Assert.Equal(plain.Length + 19, related.Length);
    }

    [Fact]
    public void Destroy_RelatedEntry_ReplicaTombstoneHasNoMaster()
    {
        _pair.SubmitAndCapture(Related());
        _pair.SubmitAndCapture(EngineKit.Destroy(Data));
        Replicate();

        var all = _pair.Receiver.SnapshotTable(includeTombstones: true).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.True((all[Data].Status & ConnectionStatus.Tombstone) != 0);
        Assert.False(all[Data].HasMaster);
    }

    [Fact]
    public void FullSync_SnapshotChunkEncodedAndApplied_CarriesMasterAndMark()
    {
        _pair.SubmitAndCapture(EngineKit.New(Control, state: ProtocolState.TcpEstablished));
        _pair.SubmitAndCapture(Related());
        _pair.Sender.CutSnapshot();
        int cursor = 0;
        var chunk = new ConnectionEvent[16];
        int n = _pair.Sender.CopySnapshotChunk(ref cursor, chunk);
        Assert.Equal(2, n);

        // Through the wire encoding, as the full-sync frames carry it.
        var buffer = new byte[RecordCodec.MaxRecordSize * n];
        int at = 0;
        foreach (var r in chunk.AsSpan(0, n))
        {
            at += RecordCodec.Write(buffer.AsSpan(at), r);
        }

        ReadOnlySpan<byte> records = buffer.AsSpan(0, at);
        var decoded = new ConnectionEvent[n];
        Assert.Equal(n, RecordCodec.ReadMany(ref records, decoded));
        Assert.Equal(n, _pair.Receiver.ApplySnapshot(decoded));

        Assert.True(_pair.Receiver.TryGetEntry(Data, out var data));
        Assert.Equal(Control, data.Master);
        Assert.Equal(0x42u, data.Mark);
    }

    [Fact]
    public void HandleDatagram_ForgedExtensionAfterGoodRecord_DroppedAsBadExtensionAndCounted()
    {
        var good = EngineKit.Record(EngineKit.New(Control, state: ProtocolState.TcpEstablished), 1);
        var forged = EngineKit.Record(Related(), 2);
        int ext = RecordCodec.ExtensionSize(Related().Entry);
        forged[forged.Length - ext + 1] = 2; // the extension's version: 2 is not known

        var result = _pair.Receiver.HandleDatagram(EngineKit.Seal(_pair.Key, MessageType.Data, 1, EngineKit.HandBuiltEpoch, 1, EngineKit.Body(2, good, forged)).AsSpan());

        Assert.Equal(DropReason.BadExtension, result);
        Assert.True(_pair.Receiver.Counters.ToDictionary().ContainsKey("drops_bad_extension")); // the receive loop counts every reason under its name
        Assert.True(_pair.Receiver.TryGetEntry(Control, out _)); // the record before it was applied
        Assert.False(_pair.Receiver.TryGetEntry(Data, out _));
    }
}
