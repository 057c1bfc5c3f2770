using ClusterSync.Engine;
using ClusterSync.Protocol;
using ClusterSync.Security;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Core.Tests.Engine;

/// <summary>The send window never wedges on a stalled peer, and each peer's replication lag is measured and alarmed.</summary>
public sealed class SyncEngineWindowTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(EngineKit.Start);
    private readonly ClusterKey _key = ClusterKey.Generate();
    private readonly SyncEngine _sender;
    private readonly CaptureChannel _senderChannel;
    private readonly SyncEngine _receiver;
    private readonly CaptureChannel _receiverChannel;

    public SyncEngineWindowTests()
    {
        (_sender, _senderChannel) = EngineKit.Create(1, 2, _key, _time);
        (_receiver, _receiverChannel) = EngineKit.Create(2, 1, _key, _time);
        _sender.Start();
    }

    public void Dispose()
    {
        _sender.Dispose();
        _receiver.Dispose();
    }

    private static DropReason Feed(SyncEngine to, byte[] datagram) => to.HandleDatagram(((byte[])datagram.Clone()).AsSpan());

    /// <summary>The receiver stays alive (its heartbeats reach the sender) without acknowledging anything new.</summary>
    private void AdvanceWithHeartbeatsOnly(TimeSpan total)
    {
        var step = TimeSpan.FromMilliseconds(50);
        for (var t = TimeSpan.Zero; t < total; t += step)
        {
            _time.Advance(step);
            _receiver.OnTick();
            var beat = _receiverChannel.SentTo(0).LastOrDefault(d => d[3] == (byte)MessageType.Heartbeat);
            if (beat is not null)
            {
                Feed(_sender, beat);
            }
        }
    }

    private void SubmitMany(int count, ushort firstPort)
    {
        for (int i = 0; i < count; i++)
        {
            _sender.Submit(EngineKit.New(EngineKit.Tcp(443, (ushort)(firstPort + i))));
        }
    }

    [Fact]
    public void WaitForWindow_LivePeerStopsAcknowledging_DroppedFromWindowAfterDeadIntervalAndReadmittedWhenCaughtUp()
    {
        // The receiver hears the sender and acknowledges the first datagram, then goes silent on acks (a stuck peer).
        _sender.Submit(EngineKit.New(EngineKit.Tcp(443, 100)));
        Feed(_receiver, _senderChannel.WaitForData(1)[0]);
        _receiver.OnTick();
        Assert.Equal(DropReason.None, Feed(_sender, _receiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack)));
        Assert.Equal(1UL, _sender.GetPeerStatus()[0].AckedThrough);

        // One connection per datagram is not guaranteed: submit one at a time and wait for each to go out.
        for (int i = 0; i < 16; i++)
        {
            _sender.Submit(EngineKit.New(EngineKit.Tcp(443, (ushort)(200 + i))));
            _senderChannel.WaitForData(2 + i);
        }

        _sender.Submit(EngineKit.New(EngineKit.Tcp(443, 300)));
        Assert.True(_senderChannel.WaitUntil(_ => _sender.Counters.WindowStalls == 1, TimeSpan.FromSeconds(10)), "the window never filled");
        Assert.Equal(17, _senderChannel.DataTo(0).Count); // 16 in flight beyond the acknowledged one: the window (16) is full
        Assert.True(_sender.GetReplicationLag()[0].InWindow);

        AdvanceWithHeartbeatsOnly(TimeSpan.FromMilliseconds(400)); // past the dead interval (300 ms), the peer still live

        _senderChannel.WaitForData(18);
        Assert.Equal(1, _sender.Counters.WindowPeersDropped);
        var lag = _sender.GetReplicationLag()[0];
        Assert.True(lag.Live);
        Assert.False(lag.InWindow);
        Assert.Equal(17UL, lag.SequenceLag);

        // The peer catches up: it is back in the window at the next datagram.
        foreach (var d in _senderChannel.DataTo(0).Skip(1))
        {
            Feed(_receiver, d);
        }

        _receiver.OnTick();
        Assert.Equal(DropReason.None, Feed(_sender, _receiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack)));
        _sender.Submit(EngineKit.New(EngineKit.Tcp(443, 301)));
        _senderChannel.WaitForData(19);
        Assert.True(_senderChannel.WaitUntil(_ => _sender.GetReplicationLag()[0].InWindow, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, _sender.Counters.WindowPeersDropped);
    }

    [Fact]
    public void GetReplicationLag_LivePeerAcknowledgesNothingPastTheBound_LaggingFailureAndOneAlarmUntilItCatchesUp()
    {
        _sender.Submit(EngineKit.New(EngineKit.Tcp(443, 500)));
        var data = _senderChannel.WaitForData(1);
        _sender.OnTick();
        Feed(_receiver, _senderChannel.SentTo(0).First(d => d[3] == (byte)MessageType.Heartbeat)); // the receiver knows the sender, acks nothing yet
        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(1));
        var early = _sender.GetReplicationLag()[0];
        Assert.True(early.Live);
        Assert.Equal(1UL, early.SequenceLag);
        Assert.InRange(early.OldestUnackedAgeMs, 900, 1100);
        Assert.False(early.Lagging);
        Assert.Null(_sender.ReplicationLagFailure);

        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(5)); // past maxReplicationLag (5 s)

        var late = _sender.GetReplicationLag()[0];
        Assert.True(late.Lagging);
        Assert.Contains("member 2", _sender.ReplicationLagFailure);
        Assert.Equal(1, _sender.Counters.ReplicationLagAlarms);
        AdvanceWithHeartbeatsOnly(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _sender.Counters.ReplicationLagAlarms); // once per episode

        foreach (var d in data)
        {
            Feed(_receiver, d);
        }

        _receiver.OnTick();
        Assert.Equal(DropReason.None, Feed(_sender, _receiverChannel.SentTo(0).Last(d => d[3] == (byte)MessageType.Ack)));
        var caughtUp = _sender.GetReplicationLag()[0];
        Assert.Equal(0UL, caughtUp.SequenceLag);
        Assert.Equal(0, caughtUp.OldestUnackedAgeMs);
        Assert.False(caughtUp.Lagging);
        Assert.Null(_sender.ReplicationLagFailure);
    }

    [Fact]
    public void GetReplicationLag_PeerDead_NotLagging()
    {
        _sender.Submit(EngineKit.New(EngineKit.Tcp(443, 600)));
        _senderChannel.WaitForData(1);
        _time.Advance(TimeSpan.FromSeconds(10)); // never heard: dead after the first dead interval

        var lag = _sender.GetReplicationLag()[0];
        Assert.False(lag.Live);
        Assert.False(lag.Lagging);
        Assert.Null(_sender.ReplicationLagFailure);
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
