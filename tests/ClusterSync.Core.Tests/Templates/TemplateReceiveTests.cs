using ClusterSync.Templates;

namespace ClusterSync.Core.Tests.Templates;

/// <summary>Template records in authenticated datagrams built by hand with member 1's real key (hostile and valid).</summary>
public sealed class TemplateReceiveTests : IDisposable
{
    private const ulong Epoch = EngineKit.HandBuiltEpoch;
    private readonly EnginePair _pair = new(startSender: false);

    public void Dispose() => _pair.Dispose();

    private byte[] Seal(ulong sequence, byte[] body) => EngineKit.Seal(_pair.Key, MessageType.Data, 1, Epoch, sequence, body);

    private ConnectionTemplate Template(ushort port = 80, ulong version = 500)
    {
        long now = _pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        return new ConnectionTemplate(ConnectionKey.IPv4(0x0A00_0001, 0xC0A8_0101, 0, port, 6), 1, 1, 25, 60, now, now, version);
    }

    private static byte[] Bytes(ConnectionTemplate t)
    {
        var b = new byte[TemplateCodec.Measure(t)];
        TemplateCodec.Write(b, t);
        return b;
    }

    private static byte[] Connection(ushort sourcePort)
        => EngineKit.Record(ConnectionEvent.Create(ConnectionEventKind.New, EngineKit.Tcp(443, sourcePort), ProtocolState.TcpEstablished, 600, 0), version: 77);

    [Fact]
    public void HandleDatagram_TemplatesBetweenConnectionRecords_AllApplied()
    {
        var body = EngineKit.Body(4, Connection(1), Bytes(Template(80)), Connection(2), Bytes(Template(8080)));

        Assert.Equal(DropReason.None, _pair.Feed(Seal(1, body)));

        Assert.Equal(2, _pair.Receiver.SnapshotTable().Count);
        Assert.Equal(2, _pair.Receiver.LiveTemplateCount);
        Assert.Equal(2, _pair.Receiver.Counters.TemplateRecordsApplied);
        Assert.True(_pair.Receiver.TryMatchTemplate(EngineKit.Tcp(80, 12345), out var t));
        Assert.Equal(25u, t.Count);
    }

    [Fact]
    public void HandleDatagram_MalformedTemplate_MalformedAndNothingAfterItApplied()
    {
        var bad = Bytes(Template());
        bad[7] = 9; // a source port: not a template

        var result = _pair.Feed(Seal(1, EngineKit.Body(3, Connection(1), bad, Connection(2))));

        Assert.Equal(DropReason.Malformed, result);
        Assert.Single(_pair.Receiver.SnapshotTable());
        Assert.Equal(0, _pair.Receiver.LiveTemplateCount);
    }

    [Fact]
    public void HandleDatagram_TruncatedTemplate_Malformed()
    {
        var b = Bytes(Template());

        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(1, EngineKit.Body(1, b[..^1]))));
        Assert.Equal(0, _pair.Receiver.LiveTemplateCount);
    }

    [Fact]
    public void HandleDatagram_ReplayedTemplateDatagram_DroppedAsReplay()
    {
        var datagram = Seal(1, EngineKit.Body(1, Bytes(Template())));
        Assert.Equal(DropReason.None, _pair.Feed(datagram));

        Assert.Equal(DropReason.Replay, _pair.Feed(datagram));
        Assert.Equal(1, _pair.Receiver.Counters.TemplateRecordsApplied);
    }

    [Fact]
    public void HandleDatagram_OlderVersionOrExpiredTemplate_NotApplied()
    {
        Assert.Equal(DropReason.None, _pair.Feed(Seal(1, EngineKit.Body(1, Bytes(Template(version: 500) with { Count = 99 })))));
        Assert.Equal(DropReason.None, _pair.Feed(Seal(2, EngineKit.Body(1, Bytes(Template(version: 400) with { Count = 7 })))));
        long old = _pair.Time.GetUtcNow().ToUnixTimeMilliseconds() - 120_000;
        var expired = Template(port: 81) with { CreatedMs = old, UpdatedMs = old };
        Assert.Equal(DropReason.None, _pair.Feed(Seal(3, EngineKit.Body(1, Bytes(expired)))));

        Assert.Equal(1, _pair.Receiver.LiveTemplateCount);
        Assert.True(_pair.Receiver.TryMatchTemplate(EngineKit.Tcp(80, 1), out var t));
        Assert.Equal(99u, t.Count);
        Assert.Equal(2, _pair.Receiver.Counters.TemplateRecordsStale);
    }

    [Fact]
    public void HandleDatagram_ForgedTemplateUnderAnotherKey_AuthenticationFailed()
    {
        var forged = EngineKit.Seal(ClusterKey.Generate(), MessageType.Data, 1, Epoch, 1, EngineKit.Body(1, Bytes(Template())));

        Assert.Equal(DropReason.AuthenticationFailed, _pair.Feed(forged));
        Assert.Equal(0, _pair.Receiver.LiveTemplateCount);
    }
}
