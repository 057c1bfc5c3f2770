using ClusterSync.Protocol;
using ClusterSync.Security;

namespace ClusterSync.Core.Tests.Engine;

/// <summary>Control-plane round trip without a network: the receiver NACKs a gap, the sender resends from its buffer.</summary>
public sealed class SyncEngineRepairTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    private static (PacketHeader Header, byte[] Body) OpenControl(byte[] datagram, ClusterKey key, ushort sender, ulong epoch)
    {
        var copy = (byte[])datagram.Clone();
        Assert.Equal(DropReason.None, PacketHeader.TryRead(copy, out var header));
        using var opener = PacketProtection.Create(key, sender, epoch);
        int length = opener.Open(copy);
        Assert.True(length >= 0, "control datagram did not authenticate");
        return (header, copy.AsSpan(PacketHeader.Size, length).ToArray());
    }

    [Fact]
    public void OnTick_GapInReceivedData_AckCarriesNackAndSenderResendsIdenticalDatagram()
    {
        var d1 = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 1001)));
        var d2 = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 1002)));
        Assert.Equal(DropReason.None, _pair.Feed(d2)); // d1 "lost"

        _pair.Receiver.OnTick();

        var acks = _pair.ReceiverChannel.SentTo(0).Where(d => d[3] == (byte)MessageType.Ack).ToList();
        var (header, body) = OpenControl(Assert.Single(acks), _pair.Key, 2, _pair.Receiver.Epoch);
        Assert.True(header.IsControl);
        var ranges = new SequenceRange[AckMessage.MaxRanges];
        Assert.True(AckMessage.TryRead(body, out ushort target, out ulong targetEpoch, out ulong cumulative, out ulong highest, ranges, out int count));
        Assert.Equal(1, target);
        Assert.Equal(_pair.Sender.Epoch, targetEpoch);
        Assert.Equal(0UL, cumulative);
        Assert.Equal(2UL, highest);
        Assert.Equal([new SequenceRange(1, 1)], ranges[..count]);
        Assert.Equal(1, _pair.Receiver.Counters.NackRangesSent);

        Assert.Equal(DropReason.None, _pair.Sender.HandleDatagram((byte[])acks[0].Clone()));

        var data = _pair.SenderChannel.WaitForData(3);
        Assert.Equal(d1, data[2]);
        Assert.Equal(1, _pair.Sender.Counters.AcksReceived);
        Assert.Equal(1, _pair.Sender.Counters.NackRangesReceived);
        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.Sender.Counters.Retransmissions == 1, TimeSpan.FromSeconds(10)));

        Assert.Equal(DropReason.None, _pair.Feed(data[2]));
        Assert.Equal(2, _pair.Receiver.SnapshotTable().Count);

        // Acknowledged control messages are themselves replay-protected.
        Assert.Equal(DropReason.Replay, _pair.Sender.HandleDatagram((byte[])acks[0].Clone()));
    }

    [Fact]
    public void OnTick_HeartbeatAnnouncesLostTail_ReceiverNacksTail()
    {
        var d1 = _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 2001)));
        _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 2002))); // lost
        _pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, 2003))); // lost
        Assert.Equal(DropReason.None, _pair.Feed(d1));

        _pair.Sender.OnTick(); // first tick always sends a heartbeat
        var heartbeat = _pair.SenderChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Heartbeat);
        Assert.Equal(DropReason.None, _pair.Feed(heartbeat));
        Assert.Equal(1, _pair.Receiver.Counters.HeartbeatsReceived);

        _pair.Receiver.OnTick();

        var ack = _pair.ReceiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack);
        var (_, body) = OpenControl(ack, _pair.Key, 2, _pair.Receiver.Epoch);
        var ranges = new SequenceRange[AckMessage.MaxRanges];
        Assert.True(AckMessage.TryRead(body, out _, out _, out ulong cumulative, out ulong highest, ranges, out int count));
        Assert.Equal(1UL, cumulative);
        Assert.Equal(3UL, highest);
        Assert.Equal([new SequenceRange(2, 3)], ranges[..count]);
    }
}
