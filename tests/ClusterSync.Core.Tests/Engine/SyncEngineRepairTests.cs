namespace ClusterSync.Core.Tests.Engine;

/// <summary>Control-plane round trip without a network: the receiver NACKs a gap, the sender resends from its buffer.</summary>
public sealed class SyncEngineRepairTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    private static (PacketHeader Header, byte[] Body) OpenControl(byte[] datagram, ClusterKey key, ushort sender, ulong epoch)
    {
        var (header, body) = EngineKit.Open(datagram, key, sender, epoch);
        Assert.True(body is not null, "control datagram did not authenticate");
        return (header, body);
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

    /// <summary>Sends one more datagram than the resend buffer holds; the receiver gets only the last one.</summary>
    private List<byte[]> OverflowResendBuffer()
    {
        int n = _pair.Sender.Options.ResendBufferDatagrams + 1;
        // A peer never heard from holds the send window only for the first dead interval.
        _pair.Time.Advance(_pair.Sender.Options.DeadInterval + TimeSpan.FromMilliseconds(1));
        var sent = new List<byte[]>();
        for (int i = 0; i < n; i++)
        {
            sent.Add(_pair.SubmitAndCapture(EngineKit.New(EngineKit.Tcp(443, (ushort)(10000 + i)))));
        }

        Assert.Equal((ulong)n, _pair.Sender.LastDataSequence);
        Assert.Equal(DropReason.None, _pair.Feed(sent[^1]));
        return sent;
    }

    [Fact]
    public void HandleAck_NackForOverwrittenSequence_SenderAnswersGoneAndReceiverRaisesResync()
    {
        var sent = OverflowResendBuffer();
        int n = sent.Count;
        var resyncs = new List<(byte Peer, ulong Lost)>();
        _pair.Receiver.ResyncNeeded += (peer, lost) => resyncs.Add((peer, lost));
        _pair.Receiver.OnTick();
        var ack = _pair.ReceiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack);

        Assert.Equal(DropReason.None, _pair.Sender.HandleDatagram((byte[])ack.Clone()));

        Assert.True(_pair.SenderChannel.WaitUntil(c => c.SentTo(0).Any(d => d[3] == (byte)MessageType.Gone), TimeSpan.FromSeconds(10)), "no Gone sent");
        var gone = _pair.SenderChannel.SentTo(0).Single(d => d[3] == (byte)MessageType.Gone);
        var (_, body) = OpenControl(gone, _pair.Key, 1, _pair.Sender.Epoch);
        Assert.True(GoneMessage.TryRead(body, out ushort target, out ulong targetEpoch, out var range));
        Assert.Equal(2, target);
        Assert.Equal(_pair.Receiver.Epoch, targetEpoch);
        Assert.Equal(new SequenceRange(1, 1), range);

        Assert.Equal(DropReason.None, _pair.Feed(gone));

        Assert.Equal([((byte)1, 1UL)], resyncs);
        Assert.Equal(1, _pair.Receiver.Counters.GoneReceived);
        Assert.Equal(1, _pair.Receiver.Counters.ResyncNeeded);
        Assert.Equal(1, _pair.Receiver.Counters.LostSequences);

        // Everything still held (2..n-1) was resent; feeding it completes the stream.
        Assert.True(_pair.SenderChannel.WaitUntil(c => c.DataTo(0).Count >= (2 * n) - 2, TimeSpan.FromSeconds(10)), "resends missing");
        foreach (var d in _pair.SenderChannel.DataTo(0).Skip(n))
        {
            Assert.Equal(DropReason.None, _pair.Feed(d));
        }

        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.Sender.Counters.Retransmissions == n - 2, TimeSpan.FromSeconds(10)));
        Assert.Equal(n - 1, _pair.Receiver.SnapshotTable().Count);
    }

    [Fact]
    public void HandleHeartbeat_OldestResendableAboveGap_ReceiverWritesOffAndRaisesResync()
    {
        var sent = OverflowResendBuffer();
        var resyncs = new List<(byte Peer, ulong Lost)>();
        _pair.Receiver.ResyncNeeded += (peer, lost) => resyncs.Add((peer, lost));

        _pair.Time.Advance(_pair.Sender.Options.HeartbeatInterval); // the timer's next heartbeat
        _pair.Sender.OnTick();
        var heartbeat = _pair.SenderChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Heartbeat);
        var (_, body) = OpenControl(heartbeat, _pair.Key, 1, _pair.Sender.Epoch);
        Assert.True(HeartbeatMessage.TryRead(body, out ulong last, out ulong oldest, out _, out _));
        Assert.Equal((ulong)sent.Count, last);
        Assert.Equal(2UL, oldest);

        Assert.Equal(DropReason.None, _pair.Feed(heartbeat));

        Assert.Equal([((byte)1, 1UL)], resyncs);
        Assert.Equal(1, _pair.Receiver.Counters.LostSequences);

        // Sequence 1 is written off: it is now a replay, while the ones still held are not.
        Assert.Equal(DropReason.Replay, _pair.Feed(sent[0]));
        Assert.Equal(DropReason.None, _pair.Feed(sent[1]));
    }
}
