namespace ClusterSync.Core.Tests.Engine;

/// <summary>The send window never wedges on a stalled peer, and each peer's replication lag is measured and alarmed.</summary>
public sealed class SyncEngineWindowTests : IDisposable
{
    private readonly EnginePair _pair = new();

    public void Dispose() => _pair.Dispose();

    /// <summary>The receiver stays alive (its heartbeats reach the sender) without acknowledging anything new.</summary>
    private void AdvanceWithHeartbeatsOnly(TimeSpan total)
    {
        var step = TimeSpan.FromMilliseconds(50);
        for (var t = TimeSpan.Zero; t < total; t += step)
        {
            _pair.Time.Advance(step);
            _pair.Receiver.OnTick();
            var beat = _pair.ReceiverChannel.Sent(MessageType.Heartbeat).LastOrDefault();
            if (beat is not null)
            {
                _pair.FeedBack(beat);
            }
        }
    }

    private void SubmitMany(int count, ushort firstPort)
    {
        for (int i = 0; i < count; i++)
        {
            _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, (ushort)(firstPort + i))));
        }
    }

    [Fact]
    public void WaitForWindow_LivePeerStopsAcknowledging_DroppedFromWindowAfterDeadIntervalAndReadmittedWhenCaughtUp()
    {
        // The receiver hears the sender and acknowledges the first datagram, then goes silent on acks (a stuck peer).
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, 100)));
        _pair.Feed(_pair.SenderChannel.WaitForData(1)[0]);
        _pair.Receiver.OnTick();
        Assert.Equal(DropReason.None, _pair.FeedBack(_pair.ReceiverChannel.Sent(MessageType.Ack).Last()));
        Assert.Equal(1UL, _pair.Sender.GetPeerStatus()[0].AckedThrough);

        // One connection per datagram is not guaranteed: submit one at a time and wait for each to go out.
        for (int i = 0; i < 16; i++)
        {
            _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, (ushort)(200 + i))));
            _pair.SenderChannel.WaitForData(2 + i);
        }

        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, 300)));
        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.Sender.Counters.WindowStalls == 1, TimeSpan.FromSeconds(10)), "the window never filled");
        Assert.Equal(17, _pair.SenderChannel.DataTo(0).Count); // 16 in flight beyond the acknowledged one: the window (16) is full
        Assert.True(_pair.Sender.GetReplicationLag()[0].InWindow);

        AdvanceWithHeartbeatsOnly(TimeSpan.FromMilliseconds(400)); // past the dead interval (300 ms), the peer still live

        _pair.SenderChannel.WaitForData(18);
        Assert.Equal(1, _pair.Sender.Counters.WindowPeersDropped);
        var lag = _pair.Sender.GetReplicationLag()[0];
        Assert.True(lag.Live);
        Assert.False(lag.InWindow);
        Assert.Equal(17UL, lag.SequenceLag);

        // The peer catches up: it is back in the window at the next datagram.
        foreach (var d in _pair.SenderChannel.DataTo(0).Skip(1))
        {
            _pair.Feed(d);
        }

        _pair.Receiver.OnTick();
        Assert.Equal(DropReason.None, _pair.FeedBack(_pair.ReceiverChannel.Sent(MessageType.Ack).Last()));
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, 301)));
        _pair.SenderChannel.WaitForData(19);
        Assert.True(_pair.SenderChannel.WaitUntil(_ => _pair.Sender.GetReplicationLag()[0].InWindow, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, _pair.Sender.Counters.WindowPeersDropped);
    }

    [Fact]
    public void GetReplicationLag_LivePeerAcknowledgesNothingPastTheBound_LaggingFailureAndOneAlarmUntilItCatchesUp()
    {
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, 500)));
        var data = _pair.SenderChannel.WaitForData(1);
        _pair.Sender.OnTick();
        _pair.Feed(_pair.SenderChannel.Sent(MessageType.Heartbeat)[0]); // the receiver knows the sender, acks nothing yet
        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(1));
        var early = _pair.Sender.GetReplicationLag()[0];
        Assert.True(early.Live);
        Assert.Equal(1UL, early.SequenceLag);
        Assert.InRange(early.OldestUnackedAgeMs, 900, 1100);
        Assert.False(early.Lagging);
        Assert.Null(_pair.Sender.ReplicationLagFailure);

        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(5)); // past maxReplicationLag (5 s)

        var late = _pair.Sender.GetReplicationLag()[0];
        Assert.True(late.Lagging);
        Assert.Contains("member 2", _pair.Sender.ReplicationLagFailure);
        Assert.Equal(1, _pair.Sender.Counters.ReplicationLagAlarms);
        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _pair.Sender.Counters.ReplicationLagAlarms); // once per episode

        foreach (var d in data)
        {
            _pair.Feed(d);
        }

        _pair.Receiver.OnTick();
        Assert.Equal(DropReason.None, _pair.FeedBack(_pair.ReceiverChannel.Sent(MessageType.Ack).Last()));
        var caughtUp = _pair.Sender.GetReplicationLag()[0];
        Assert.Equal(0UL, caughtUp.SequenceLag);
        Assert.Equal(0, caughtUp.OldestUnackedAgeMs);
        Assert.False(caughtUp.Lagging);
        Assert.Null(_pair.Sender.ReplicationLagFailure);
    }

    [Fact]
    public void GetReplicationLag_PeerDead_NotLagging()
    {
        _pair.Sender.Submit(EngineKit.New(EngineKit.Tcp(443, 600)));
        _pair.SenderChannel.WaitForData(1);
        _pair.Time.Advance(TimeSpan.FromSeconds(10)); // never heard: dead after the first dead interval

        var lag = _pair.Sender.GetReplicationLag()[0];
        Assert.False(lag.Live);
        Assert.False(lag.Lagging);
        Assert.Null(_pair.Sender.ReplicationLagFailure);
    }

    [Fact]
    public void Validate_MaxReplicationLagOutOfRange_RefusedAndShortBoundRaisedToDeadInterval()
    {
        var options = new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], MaxReplicationLag = TimeSpan.FromHours(2) };
        Assert.Contains(options.Validate("sync"), e => e.StartsWith("sync.maxReplicationLag:", StringComparison.Ordinal));
        Assert.Contains((options with { MaxReplicationLag = TimeSpan.FromSeconds(-1) }).Validate("sync"), e => e.StartsWith("sync.maxReplicationLag:", StringComparison.Ordinal));
        Assert.Empty((options with { MaxReplicationLag = TimeSpan.Zero }).Validate("sync"));
        Assert.Equal(TimeSpan.Zero, (options with { MaxReplicationLag = TimeSpan.Zero }).EffectiveMaxReplicationLag);
        Assert.Equal(options.DeadInterval, (options with { MaxReplicationLag = TimeSpan.FromMilliseconds(10) }).EffectiveMaxReplicationLag);
    }
}
