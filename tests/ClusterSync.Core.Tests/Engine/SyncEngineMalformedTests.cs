using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Protocol;
using ClusterSync.Security;

namespace ClusterSync.Core.Tests.Engine;

/// <summary>Authenticated datagrams whose body is wrong: built by hand with member 1's real key.</summary>
public sealed class SyncEngineMalformedTests : IDisposable
{
    private const ulong Epoch = 1_795_000_000_000;
    private readonly EnginePair _pair = new(startSender: false);

    public void Dispose() => _pair.Dispose();

    private byte[] Seal(MessageType type, ulong sequence, byte[] body)
    {
        var datagram = new byte[PacketHeader.Size + body.Length + PacketProtection.TagSize];
        new PacketHeader(type, 1, HeaderFlags.Sealed, Epoch, sequence).Write(datagram);
        body.CopyTo(datagram, PacketHeader.Size);
        using var sealer = PacketProtection.Create(_pair.Key, 1, Epoch);
        Assert.Equal(datagram.Length, sealer.Seal(datagram, body.Length));
        return datagram;
    }

    private static byte[] Record(ushort sourcePort)
    {
        var e = ConnectionEvent.Create(ConnectionEventKind.New, EngineKit.Tcp(443, sourcePort), ProtocolState.TcpEstablished, 600, 1_795_000_000_000);
        e.Entry.UpdatedMs = e.Entry.CreatedMs;
        e.Entry.Version = 77;
        e.Entry.Owner = 1;
        var b = new byte[RecordCodec.MaxRecordSize];
        return b[..RecordCodec.Write(b, e)];
    }

    private static byte[] Body(ushort count, params byte[][] parts)
    {
        var head = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(head, count);
        return [.. head, .. parts.SelectMany(p => p)];
    }

    [Fact]
    public void HandleDatagram_WellFormedHandBuiltDatagram_Applied()
    {
        Assert.Equal(DropReason.None, _pair.Feed(Seal(MessageType.Data, 1, Body(2, Record(1), Record(2)))));

        Assert.Equal(2, _pair.Receiver.SnapshotTable().Count);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void HandleDatagram_BodyShorterThanCount_Malformed(int length)
    {
        var result = _pair.Feed(Seal(MessageType.Data, 1, new byte[length]));

        Assert.Equal(DropReason.Malformed, result);
        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_CountAboveRecords_MalformedAfterApplyingTheValidOnes()
    {
        var result = _pair.Feed(Seal(MessageType.Data, 1, Body(2, Record(1))));

        Assert.Equal(DropReason.Malformed, result);
        Assert.Single(_pair.Receiver.SnapshotTable());
    }

    [Fact]
    public void HandleDatagram_TrailingBytesAfterRecords_Malformed()
    {
        var result = _pair.Feed(Seal(MessageType.Data, 1, Body(1, Record(1), [0xFF, 0xFF])));

        Assert.Equal(DropReason.Malformed, result);
    }

    [Fact]
    public void HandleDatagram_BadRecord_Malformed()
    {
        var bad = Record(1);
        bad[0] = 9; // unknown op

        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(MessageType.Data, 1, Body(1, bad))));
        Assert.Empty(_pair.Receiver.SnapshotTable(includeTombstones: true));
    }

    [Fact]
    public void HandleDatagram_MalformedControlBodies_Malformed()
    {
        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(MessageType.Ack, PacketHeader.ControlSpace | 1, new byte[5])));
        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(MessageType.Heartbeat, PacketHeader.ControlSpace | 2, new byte[HeartbeatMessage.Size + 1])));
        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(MessageType.Gone, PacketHeader.ControlSpace | 3, new byte[GoneMessage.Size])));
    }

    [Fact]
    public void HandleDatagram_ControlSequenceReplayed_Replay()
    {
        var body = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(body, 0, 1, 0, 0);
        var heartbeat = Seal(MessageType.Heartbeat, PacketHeader.ControlSpace | 1, body);

        Assert.Equal(DropReason.None, _pair.Feed(heartbeat));
        Assert.Equal(DropReason.Replay, _pair.Feed(heartbeat));
        Assert.Equal(1, _pair.Receiver.Counters.HeartbeatsReceived);
    }
}
