namespace ClusterSync.Core.Tests.Membership;

/// <summary>MembershipController in load sharing (MembershipController.Ownership): owners follow the live Active members.</summary>
public sealed class MembershipOwnershipTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(EngineKit.Start);
    private readonly ClusterKey _key = ClusterKey.Generate();
    private readonly SyncEngine _engine;
    private readonly SyncEngine _peer;
    private readonly CaptureChannel _peerChannel;
    private readonly InMemoryReplicaSink _sink = new();
    private readonly MembershipController _controller;
    private readonly List<(byte[] Owners, int Gained)> _changes = [];

    public MembershipOwnershipTests()
    {
        (_engine, _) = EngineKit.Create(1, 2, _key, _time);
        (_peer, _peerChannel) = EngineKit.Create(2, 1, _key, _time);
        _peer.AdvertisedState = (byte)MemberState.Active;
        _controller = new MembershipController(_engine, new MembershipOptions { Mode = ClusterMode.LoadSharing }, _sink, _time);
        _controller.OwnershipChanged += (owners, gained) => _changes.Add((owners, gained.Count));
    }

    public void Dispose()
    {
        _controller.Dispose();
        _engine.Dispose();
        _peer.Dispose();
    }

    private static ConnectionKey KeyOf(int i) => ConnectionKey.IPv4(0x0A20_0000u + (uint)i, 0xC0A8_0101, (ushort)(30000 + i), 443, 6);

    /// <summary>Ticks the controller; the peer's heartbeats reach this member while <paramref name="peerAlive"/>.</summary>
    private void Run(TimeSpan span, bool peerAlive)
    {
        for (var t = TimeSpan.Zero; t < span; t += Tick)
        {
            if (peerAlive)
            {
                _peer.OnTick();
                var beat = _peerChannel.SentTo(0).LastOrDefault(d => d[3] == (byte)MessageType.Heartbeat);
                if (beat is not null)
                {
                    _engine.HandleDatagram(((byte[])beat.Clone()).AsSpan());
                }
            }

            _time.Advance(Tick);
            _controller.Evaluate();
        }
    }

    [Fact]
    public void Evaluate_LoadSharing_NeverRelaysWhatItAppliesFromTheOtherActives()
    {
        // Every member is Active and writes in load sharing: passing a peer's changes on would only double the traffic.
        Run(TimeSpan.FromMilliseconds(400), peerAlive: true);

        Assert.Equal(MemberState.Active, _controller.State);
        Assert.False(_engine.RelaysUnfollowed);
        Assert.False(_engine.Relaying);
    }

    [Fact]
    public void Evaluate_PeerActiveThenDies_OwnersFollowAndThisMemberCommitsExactlyTheConnectionsItGains()
    {
        // This member's replica: 200 connections of the peer (owner 2).
        var replica = new ConnectionEvent[200];
        for (int i = 0; i < replica.Length; i++)
        {
            replica[i] = ConnectionEvent.Create(ConnectionEventKind.Update, KeyOf(i), ProtocolState.TcpEstablished, 3600, 0);
            replica[i].Entry.Owner = 2;
            replica[i].Entry.Version = 100 + (ulong)i;
        }

        _engine.ApplySnapshot(replica);
        Run(TimeSpan.FromMilliseconds(400), peerAlive: true);

        Assert.Equal(MemberState.Active, _controller.State);
        Assert.Equal([1, 2], _controller.Owners);
        int ownedByPeer = replica.Count(r => Ownership.OwnerOf(r.Key, [1, 2]) == 2);
        Assert.InRange(ownedByPeer, 60, 140); // rendezvous hashing splits about evenly
        int mine = replica.Length - ownedByPeer;
        Assert.Equal(mine, _controller.LastGained); // becoming an owner: its share, the peer keeps its own
        Assert.Equal(mine, _sink.Committed.Count);
        Assert.All(_sink.Committed.Keys, k => Assert.Equal(1, Ownership.OwnerOf(k, [1, 2])));
        foreach (var r in replica)
        {
            Assert.Equal(Ownership.OwnerOf(r.Key, [1, 2]), _controller.OwnerOf(r.Key));
        }

        int commitsBefore = _sink.Commits;
        Run(TimeSpan.FromMilliseconds(400), peerAlive: false); // past the dead interval

        Assert.Equal([1], _controller.Owners);
        Assert.Equal(ownedByPeer, _controller.LastGained); // only the dead peer's connections move
        Assert.Equal(commitsBefore + 1, _sink.Commits);
        Assert.Equal(replica.Length, _sink.Committed.Count); // its own share and the dead peer's
        // The peer alone (this member still starting), both, this member alone.
        Assert.Equal("[2]+0 [1,2]+" + mine + " [1]+" + ownedByPeer, string.Join(" ", _changes.Select(c => $"[{string.Join(',', c.Owners)}]+{c.Gained}")));
        Assert.Equal(3, _controller.OwnershipChanges);
        Assert.All(replica, r => Assert.Equal(1, _controller.OwnerOf(r.Key)));

        // The peer comes back: it takes its share back; this member keeps committed only what it still owns.
        Run(TimeSpan.FromMilliseconds(200), peerAlive: true);
        Assert.Equal([1, 2], _controller.Owners);
        Assert.Equal(0, _controller.LastGained);
        Assert.Equal(mine, _sink.Committed.Count);
        Assert.All(_sink.Committed.Keys, k => Assert.Equal(1, Ownership.OwnerOf(k, [1, 2])));
    }

    [Fact]
    public void Evaluate_GainedRelatedEntriesAheadOfTheirMaster_CommittedMastersFirst()
    {
        ConnectionKey master = Enumerable.Range(0, 100).Select(KeyOf).First(k => Ownership.OwnerOf(k, [1, 2]) == 1);
        var related = Enumerable.Range(100, 400).Select(KeyOf).Where(k => Ownership.OwnerOf(k, [1, 2]) == 1).Take(5).ToList();
        var records = related.Append(master).Select((k, i) =>
        {
            var e = ConnectionEvent.Create(ConnectionEventKind.Update, k, ProtocolState.TcpEstablished, 3600, 0);
            e.Entry.Owner = 2;
            e.Entry.Version = 100 + (ulong)i;
            e.Entry.Master = k == master ? default : master;
            return e;
        }).ToArray();
        _engine.ApplySnapshot(records); // the related entries first, in the table's order too

        Run(TimeSpan.FromMilliseconds(400), peerAlive: true);

        Assert.Equal([1, 2], _controller.Owners);
        Assert.Equal([master, .. related], _sink.CommittedSnapshot.Select(kv => kv.Key));
    }
}
