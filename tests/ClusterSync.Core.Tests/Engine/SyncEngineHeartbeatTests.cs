using ClusterSync.Engine;
using ClusterSync.Membership;
using ClusterSync.Protocol;
using ClusterSync.Security;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Core.Tests.Engine;

/// <summary>Heartbeats carry the member's state; a change of state goes out on the next tick.</summary>
public sealed class SyncEngineHeartbeatTests
{
    [Fact]
    public void AdvertisedState_ChangedBetweenHeartbeats_AnnouncedOnTheNextTick()
    {
        // Seed 245: a member that became Active was still seen as Standby by a peer for up to a heartbeat interval;
        // the peer took over too and one of them had to step down again.
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (member, channel) = EngineKit.Create(1, 2, key, time);
        var (peer, _) = EngineKit.Create(2, 1, key, time);
        using var m = member;
        using var p = peer;
        member.AdvertisedState = (byte)MemberState.Standby;
        member.StartStepped();
        member.OnTick();
        int before = Heartbeats(channel).Count;
        time.Advance(TimeSpan.FromMilliseconds(5));

        member.AdvertisedState = (byte)MemberState.Active;
        member.OnTick();

        var heartbeats = Heartbeats(channel);
        Assert.Equal(before + 1, heartbeats.Count);
        foreach (var h in heartbeats)
        {
            Assert.Equal(DropReason.None, peer.HandleDatagram(((byte[])h.Clone()).AsSpan()));
        }

        Assert.Equal((byte)MemberState.Active, peer.GetPeerStatus()[0].State);
    }

    private static List<byte[]> Heartbeats(CaptureChannel channel) => channel.SentTo(0).Where(d => d[3] == (byte)MessageType.Heartbeat).ToList();
}
