namespace ClusterSync.Core.Tests.Engine;

/// <summary>Heartbeats carry the member's state; a change of state goes out on the next tick.</summary>
public sealed class SyncEngineHeartbeatTests
{
    [Fact]
    public void AdvertisedState_ChangedBetweenHeartbeats_AnnouncedOnTheNextTick()
    {
        // Seed 245: a member that became Active was still seen as Standby by a peer for up to a heartbeat interval;
        // the peer took over too and one of them had to step down again.
        using var pair = new EnginePair(startSender: false);
        var (member, channel, peer) = (pair.Sender, pair.SenderChannel, pair.Receiver);
        member.AdvertisedState = (byte)MemberState.Standby;
        member.StartStepped();
        member.OnTick();
        int before = channel.Sent(MessageType.Heartbeat).Count;
        pair.Time.Advance(TimeSpan.FromMilliseconds(5));

        member.AdvertisedState = (byte)MemberState.Active;
        member.OnTick();

        var heartbeats = channel.Sent(MessageType.Heartbeat);
        Assert.Equal(before + 1, heartbeats.Count);
        foreach (var h in heartbeats)
        {
            Assert.Equal(DropReason.None, pair.Feed(h));
        }

        Assert.Equal((byte)MemberState.Active, peer.GetPeerStatus()[0].State);
    }
}
