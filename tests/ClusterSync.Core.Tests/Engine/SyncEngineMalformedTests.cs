namespace ClusterSync.Core.Tests.Engine;

/// <summary>Authenticated datagrams whose body is wrong: built by hand with member 1's real key.</summary>
public sealed class SyncEngineMalformedTests : IDisposable
{
    private const ulong Epoch = EngineKit.HandBuiltEpoch;
    private readonly EnginePair _pair = new(startSender: false);

    public void Dispose() => _pair.Dispose();

    /// <summary>A datagram of member 1 built by hand with its real key.</summary>
    private byte[] Seal(MessageType type, ulong sequence, byte[] body) => EngineKit.Seal(_pair.Key, type, 1, Epoch, sequence, body);

    private static byte[] Record(ushort sourcePort)
        => EngineKit.Record(ConnectionEvent.Create(ConnectionEventKind.New, EngineKit.Tcp(443, sourcePort), ProtocolState.TcpEstablished, 600, 0), version: 77);

    [Fact]
    public void HandleDatagram_WellFormedHandBuiltDatagram_Applied()
    {
        Assert.Equal(DropReason.None, _pair.Feed(Seal(MessageType.Data, 1, EngineKit.Body(2, Record(1), Record(2)))));

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
        var result = _pair.Feed(Seal(MessageType.Data, 1, EngineKit.Body(2, Record(1))));

        Assert.Equal(DropReason.Malformed, result);
        Assert.Single(_pair.Receiver.SnapshotTable());
    }

    [Fact]
    public void HandleDatagram_TrailingBytesAfterRecords_Malformed()
    {
        var result = _pair.Feed(Seal(MessageType.Data, 1, EngineKit.Body(1, Record(1), [0xFF, 0xFF])));

        Assert.Equal(DropReason.Malformed, result);
    }

    [Fact]
    public void HandleDatagram_BadRecord_Malformed()
    {
        var bad = Record(1);
        bad[0] = 9; // unknown op

        Assert.Equal(DropReason.Malformed, _pair.Feed(Seal(MessageType.Data, 1, EngineKit.Body(1, bad))));
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

    [Fact]
    public void OnTick_AfterWindowSlideAndLaterHeartbeat_AckIsAcceptedByPeer()
    {
        // seq 1 arrives, then (after a long outage) a datagram more than a window ahead: the window slides.
        ulong far = ReceiveWindow.Size + 2UL;
        Assert.Equal(DropReason.None, _pair.Feed(Seal(MessageType.Data, 1, EngineKit.Body(1, Record(1)))));
        Assert.Equal(DropReason.None, _pair.Feed(Seal(MessageType.Data, far, EngineKit.Body(1, Record(2)))));
        Assert.Equal(1, _pair.Receiver.Counters.ResyncNeeded);
        // The sender says it has sent a few more since, and still holds everything.
        var hb = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(hb, far + 8, 1, 0, 0);
        Assert.Equal(DropReason.None, _pair.Feed(Seal(MessageType.Heartbeat, PacketHeader.ControlSpace | 1, hb)));

        _pair.Receiver.OnTick();

        var ack = _pair.ReceiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack);
        var copy = (byte[])ack.Clone();
        using var opener = PacketProtection.Create(_pair.Key, 2, _pair.Receiver.Epoch);
        int length = opener.Open(copy);
        Assert.True(length > 0);
        var ranges = new SequenceRange[AckMessage.MaxRanges];
        Assert.True(
            AckMessage.TryRead(copy.AsSpan(PacketHeader.Size, length), out _, out _, out ulong cumulative, out _, ranges, out int count),
            "the receiver's own ack does not parse");
        Assert.Equal(2UL, cumulative);
        Assert.Equal(new SequenceRange(3, far - 1), ranges[0]);
        Assert.All(ranges[..count], r => Assert.True(r.First <= r.Last));
    }
}
