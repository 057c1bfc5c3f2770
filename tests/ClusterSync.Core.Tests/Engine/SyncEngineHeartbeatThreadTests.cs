namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// The heartbeat thread (SyncEngine.Heartbeat.cs, issue 13 item 1): with the system clock heartbeats go out from a thread
/// of their own, so a control tick that does not return (a slow commit, a snapshot, a handler) cannot starve them, and a
/// state change is announced at once.
/// </summary>
public sealed class SyncEngineHeartbeatThreadTests
{
    private static SyncEngine Engine(CaptureChannel channel, TimeSpan heartbeat) => new(new SyncEngineOptions
    {
        MemberId = 1,
        PeerMemberIds = [2],
        HeartbeatInterval = heartbeat,
        DeadAfterMissedHeartbeats = 3,
        Insecure = true,
        Policy = EngineKit.TestPolicy(),
    }, channel, key: null);

    [Fact]
    public void ControlTickBlocked_HeartbeatsKeepGoingOut()
    {
        var channel = new CaptureChannel(1);
        using var release = new ManualResetEventSlim(); // disposed after the engine: its control thread may still be waking from it
        using var entered = new ManualResetEventSlim();
        using var engine = Engine(channel, TimeSpan.FromMilliseconds(20));
        engine.Ticked += () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30)); // the control thread is stuck here
        };
        engine.Start();
        try
        {
            Assert.True(entered.Wait(TimeSpan.FromSeconds(10)), "the control tick ran");
            int before = channel.Sent(MessageType.Heartbeat).Count;
            Assert.True(channel.WaitUntil(ch => ch.Sent(MessageType.Heartbeat).Count >= before + 10, TimeSpan.FromSeconds(20)),
                $"heartbeats while the control tick was blocked: {channel.Sent(MessageType.Heartbeat).Count - before}");
            Assert.False(release.IsSet);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public void AdvertisedStateChanged_AnnouncedAtOnceNotAtTheNextInterval()
    {
        var channel = new CaptureChannel(1);
        using var release = new ManualResetEventSlim(); // disposed after the engine: its control thread may still be waking from it
        using var entered = new ManualResetEventSlim();
        using var engine = Engine(channel, TimeSpan.FromSeconds(10)); // the next regular heartbeat is 10 s away
        engine.Ticked += () =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        engine.Start();
        try
        {
            Assert.True(channel.WaitUntil(ch => ch.Sent(MessageType.Heartbeat).Count == 1, TimeSpan.FromSeconds(10)), "the first heartbeat at start");
            Assert.True(entered.Wait(TimeSpan.FromSeconds(10)), "the control tick ran");

            engine.AdvertisedState = (byte)MemberState.Promoting; // from another thread than the (blocked) control tick

            Assert.True(channel.WaitUntil(ch => ch.Sent(MessageType.Heartbeat).Count == 2, TimeSpan.FromSeconds(5)), "the change announced at once");
            var last = channel.Sent(MessageType.Heartbeat)[^1];
            Assert.True(HeartbeatMessage.TryRead(last.AsSpan(PacketHeader.Size), out _, out _, out byte state, out _, out _, out _));
            Assert.Equal((byte)MemberState.Promoting, state);
        }
        finally
        {
            release.Set();
        }
    }
}
