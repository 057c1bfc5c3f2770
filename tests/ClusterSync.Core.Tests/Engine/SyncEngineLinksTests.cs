namespace ClusterSync.Core.Tests.Engine;

/// <summary>An engine on two sync links (ids 1 and 2), each an in-memory <see cref="CaptureChannel"/>, on a fake clock.</summary>
public sealed class SyncEngineLinksTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(EngineKit.Start);
    private readonly ClusterKey _key = ClusterKey.Generate();
    private readonly CaptureChannel[] _links = [new(1), new(1)];
    private readonly MultiLinkChannel _channel;
    private readonly SyncEngine _engine;

    public SyncEngineLinksTests()
    {
        _channel = new MultiLinkChannel([new SyncLink(2, _links[1]), new SyncLink(1, _links[0])]);
        _engine = new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], TableCapacity = 1024, Policy = EngineKit.TestPolicy() },
            _channel, _key, _time);
    }

    public void Dispose() => _engine.Dispose();

    private readonly record struct Heartbeat(ulong Sequence, byte State, byte Link, byte Heard);

    private List<Heartbeat> Heartbeats(int link)
    {
        var result = new List<Heartbeat>();
        foreach (var d in _links[link].SentTo(0))
        {
            Assert.Equal(DropReason.None, PacketHeader.TryRead(d, out var header));
            if (header.Type != MessageType.Heartbeat)
            {
                continue;
            }

            var (_, body) = EngineKit.Open(d, _key, header.Sender, header.Epoch);
            Assert.Equal(HeartbeatMessage.Size, body?.Length);
            Assert.True(HeartbeatMessage.TryRead(body, out _, out _, out byte state, out _, out byte l, out byte heard));
            result.Add(new Heartbeat(header.Sequence, state, l, heard));
        }

        return result;
    }

    /// <summary>A heartbeat from member 2 (epoch 42) saying it was sent on <paramref name="sentOn"/> and hears us on <paramref name="heard"/>.</summary>
    private byte[] PeerHeartbeat(ulong sequence, byte sentOn, byte heard)
    {
        var body = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(body, 0, 1, (byte)MemberState.Standby, 100, sentOn, heard);
        return EngineKit.Seal(_key, MessageType.Heartbeat, 2, 42, PacketHeader.ControlSpace | sequence, body);
    }

    [Fact]
    public void SendHeartbeats_TwoLinks_OnePerLinkEachWithItsOwnSequenceAndLinkIndex()
    {
        _engine.Start();
        _time.Advance(TimeSpan.FromMilliseconds(5));
        Assert.True(_links[1].WaitUntil(_ => Heartbeats(1).Count >= 1, TimeSpan.FromSeconds(5)));

        var first = Heartbeats(0);
        var second = Heartbeats(1);
        Assert.Single(first);
        Assert.Single(second);
        Assert.Equal(0, first[0].Link);
        Assert.Equal(1, second[0].Link);
        Assert.NotEqual(first[0].Sequence, second[0].Sequence);
        Assert.Equal(2, _engine.LinkCount);
        Assert.Equal([1, 2], _engine.GetLinkStatus(0).Select(s => s.LinkId));
    }

    [Fact]
    public void HandleHeartbeat_ArrivedOnTheLinkItWasSentOn_LinkUpAndReportedInOurHeartbeats()
    {
        _engine.Start();
        _channel.LastReceivedLink = 1;
        Assert.Equal(DropReason.None, _engine.HandleDatagram(PeerHeartbeat(1, sentOn: 1, heard: 0b10)));
        _channel.LastReceivedLink = 0;
        Assert.Equal(DropReason.None, _engine.HandleDatagram(PeerHeartbeat(2, sentOn: 0, heard: 0b10)));
        _time.Advance(TimeSpan.FromMilliseconds(5));
        Assert.True(_links[1].WaitUntil(_ => Heartbeats(1).Count >= 1, TimeSpan.FromSeconds(5)));

        var status = _engine.GetLinkStatus(0);
        Assert.False(status[0].Up); // heard on link 1, but the peer does not hear us there
        Assert.True(status[1].Up);
        Assert.True(status[1].Carrying);
        Assert.Equal(1, _channel.RouteOf(0));
        Assert.Equal(1, _engine.Counters.LinkSwitches);
        Assert.Equal(0b11, Heartbeats(1)[0].Heard); // we heard member 2 on both links
    }

    [Fact]
    public void HandleHeartbeat_ArrivedOnAnotherLink_CountedAsMismatchNotAsHealth()
    {
        _channel.LastReceivedLink = 0;

        Assert.Equal(DropReason.None, _engine.HandleDatagram(PeerHeartbeat(1, sentOn: 1, heard: 0b11)));

        Assert.Equal(1, _engine.Counters.LinkMismatches);
        Assert.All(_engine.GetLinkStatus(0), s => Assert.Null(s.HeardAgeMs));
    }

    [Fact]
    public void Dispose_Started_SendsHeartbeatWithStateDownOnEveryLink()
    {
        _engine.AdvertisedState = (byte)MemberState.Active;
        _engine.Start();

        _engine.Dispose();

        Assert.Contains(Heartbeats(0), h => h.State == (byte)MemberState.Down);
        Assert.Contains(Heartbeats(1), h => h.State == (byte)MemberState.Down);
    }

    [Fact]
    public void Crash_Started_SendsNoDownHeartbeat()
    {
        _engine.AdvertisedState = (byte)MemberState.Active;
        _engine.Start();

        _engine.Crash();

        Assert.DoesNotContain(Heartbeats(0).Concat(Heartbeats(1)), h => h.State == (byte)MemberState.Down);
    }
}
