namespace ClusterSync.Core.Tests.Engine;

/// <summary>A restarted peer (a new epoch) starts every per-peer state afresh, on both ends of the stream.</summary>
public sealed class SyncEnginePeerEpochTests : IDisposable
{
    private readonly EngineSet _set = new();

    public void Dispose() => _set.Dispose();

    /// <summary>Member 1 (epoch 1000), advertising Active and started, and member 2 (epoch 5000), fed by hand.</summary>
    private (SyncEngine Sender, CaptureChannel SenderChannel, SyncEngine Receiver) StartedActiveAndReceiver()
    {
        var (sender, senderChannel) = _set.Create(1, 2, epoch: 1000);
        var (receiver, _) = _set.Create(2, 1, epoch: 5000);
        sender.AdvertisedState = (byte)ClusterSync.Membership.MemberState.Active;
        sender.Start();
        return (sender, senderChannel, receiver);
    }

    /// <summary>Sends <paramref name="count"/> data datagrams from the started sender (one connection each).</summary>
    private static List<byte[]> SendData(SyncEngine sender, CaptureChannel channel, int count, ushort firstPort)
    {
        int before = channel.DataTo(0).Count;
        for (int i = 0; i < count; i++)
        {
            sender.Submit(EngineKit.New(EngineKit.Tcp(443, (ushort)(firstPort + i))));
            channel.WaitForData(before + i + 1);
        }

        return channel.DataTo(0).Skip(before).ToList();
    }

    [Fact]
    public void HandleAck_PeerRestartedAfterAckingEverything_ResendsWhatTheNewLifeNacks()
    {
        var (sender, senderChannel) = _set.Create(1, 2, epoch: 1000);
        var (oldLife, oldChannel) = _set.Create(2, 1, epoch: 5000);
        sender.Start();
        var data = SendData(sender, senderChannel, 10, 3000);
        foreach (var d in data)
        {
            Assert.Equal(DropReason.None, EngineKit.Feed(oldLife, d));
        }

        oldLife.OnTick();
        Assert.Equal(DropReason.None, EngineKit.Feed(sender, oldChannel.Sent(MessageType.Ack).Last()));
        Assert.Equal(10UL, sender.GetPeerStatus()[0].AckedThrough);

        // Member 2 restarts: it hears the sender's heartbeat (last 10), misses 1..10 and NACKs them.
        var (newLife, newChannel) = _set.Create(2, 1, epoch: 6000);
        sender.OnTick();
        Assert.Equal(DropReason.None, EngineKit.Feed(newLife, senderChannel.Sent(MessageType.Heartbeat).Last()));
        newLife.OnTick();
        Assert.Equal(DropReason.None, EngineKit.Feed(sender, newChannel.Sent(MessageType.Ack).Last()));

        var peer = sender.GetPeerStatus()[0];
        Assert.Equal(6000UL, peer.Epoch);
        Assert.Equal(0UL, peer.AckedThrough); // nothing of the earlier life's acknowledgement survives
        Assert.True(senderChannel.WaitUntil(_ => sender.Counters.Retransmissions == 10, TimeSpan.FromSeconds(10)),
            $"expected the 10 NACKed datagrams to be resent, resent {sender.Counters.Retransmissions}");
        foreach (var d in senderChannel.DataTo(0).Skip(10))
        {
            EngineKit.Feed(newLife, d);
        }

        Assert.Equal(10, newLife.SnapshotTable().Count);
        Assert.Equal(10UL, newLife.ReceivedThrough(1).Cumulative);
    }

    [Fact]
    public void HandleDatagram_PeerRestarted_ReceiveStateAndAdvertisedStateStartAfresh()
    {
        var (sender, senderChannel, receiver) = StartedActiveAndReceiver();
        var data = SendData(sender, senderChannel, 3, 4000);
        EngineKit.Feed(receiver, data[0]);
        EngineKit.Feed(receiver, data[2]); // 2 missing: a gap of the first life
        sender.OnTick();
        EngineKit.Feed(receiver, senderChannel.Sent(MessageType.Heartbeat).Last());
        Assert.Equal((byte)ClusterSync.Membership.MemberState.Active, receiver.GetPeerStatus()[0].State);

        // The sender restarts (new epoch); its first packet of the new life is data, not a heartbeat.
        var (restarted, restartedChannel) = _set.Create(1, 2, epoch: 2000);
        restarted.Start();
        var fresh = SendData(restarted, restartedChannel, 1, 4100);
        Assert.Equal(DropReason.None, EngineKit.Feed(receiver, fresh[0]));

        var peer = receiver.GetPeerStatus()[0];
        Assert.Equal(2000UL, peer.Epoch);
        Assert.Equal(1UL, peer.ReceivedThrough); // the old gap at 2 is forgotten, not NACKed in the new life
        Assert.Equal((byte)ClusterSync.Membership.MemberState.Init, peer.State); // the Active that was is gone
        Assert.Equal(1, receiver.Counters.PeerRestarts);
        receiver.OnTick();
        Assert.Equal(0, receiver.Counters.NackRangesSent);
    }

    [Fact]
    public void HandleDatagram_ForgedHeadersWithNewEpochs_DerivationsRateLimitedAndCachedRealRestartStillHeard()
    {
        var (receiver, _) = _set.Create(2, 1, epoch: 5000);
        var forged = new byte[PacketHeader.Size + 40 + PacketProtection.TagSize];
        int limited = 0;
        for (int i = 0; i < 100; i++)
        {
            new PacketHeader(MessageType.Heartbeat, 1, HeaderFlags.Sealed, 10_000UL + (ulong)i, PacketHeader.ControlSpace | 1).Write(forged);
            var reason = EngineKit.Feed(receiver, forged);
            Assert.True(reason is DropReason.AuthenticationFailed or DropReason.DerivationLimited, $"{reason}");
            limited += reason == DropReason.DerivationLimited ? 1 : 0;
        }

        Assert.Equal(32, receiver.Counters.KeyDerivations); // the burst, then nothing more at this instant
        Assert.Equal(68, limited);

        // A repeated epoch is served from the cache: no new derivation, no budget spent.
        new PacketHeader(MessageType.Heartbeat, 1, HeaderFlags.Sealed, 10_031, PacketHeader.ControlSpace | 1).Write(forged);
        Assert.Equal(DropReason.AuthenticationFailed, EngineKit.Feed(receiver, forged));
        Assert.Equal(32, receiver.Counters.KeyDerivations);

        // The real member 1 starts; once the budget refills, its packets authenticate and its epoch is adopted.
        var (sender, senderChannel) = _set.Create(1, 2, epoch: 20_000);
        _set.Time.Advance(TimeSpan.FromSeconds(1));
        sender.OnTick();
        Assert.Equal(DropReason.None, EngineKit.Feed(receiver, senderChannel.Sent(MessageType.Heartbeat).Last()));
        Assert.Equal(20_000UL, receiver.GetPeerStatus()[0].Epoch);
        Assert.Equal(33, receiver.Counters.KeyDerivations);
    }

    [Fact]
    public void Constructor_WallClockSteppedBackSincePreviousLife_EpochNewerThanPrevious()
    {
        // Simulator seed 450: a restart after the wall clock went back got an older epoch and its peers dropped it.
        var first = _set.Add(new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], Policy = EngineKit.TestPolicy() }, new CaptureChannel(1), _set.Key, _set.Time));
        var steppedBack = new FakeTimeProvider(EngineKit.Start - TimeSpan.FromSeconds(25.5));

        var restarted = _set.Add(new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], PreviousEpoch = first.Epoch, Policy = EngineKit.TestPolicy() },
            new CaptureChannel(1), _set.Key, steppedBack));

        Assert.Equal(first.Epoch + 1, restarted.Epoch);
    }

    [Fact]
    public void Constructor_WallClockAheadOfPreviousEpoch_EpochIsTheWallClock()
    {
        var engine = _set.Add(new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], PreviousEpoch = 5, Policy = EngineKit.TestPolicy() },
            new CaptureChannel(1), _set.Key, _set.Time));

        Assert.Equal((ulong)EngineKit.Start.ToUnixTimeMilliseconds(), engine.Epoch);
    }

    [Fact]
    public void GetPeerViews_PeerHeardOnlyThroughData_NotAliveUntilItsFirstHeartbeat()
    {
        // Seed 854: a restarted member heard the Active's data but lost its heartbeats; the default state (Init) made
        // the cluster look like it was forming, and the member started as first member with a partial table.
        var (sender, senderChannel, receiver) = StartedActiveAndReceiver();
        Assert.Equal(DropReason.None, EngineKit.Feed(receiver, SendData(sender, senderChannel, 1, 8540)[0]));
        var views = new ClusterSync.Membership.MemberView[1];

        Assert.Equal(1, receiver.GetPeerViews(views));
        Assert.False(views[0].Alive);

        sender.OnTick();
        Assert.Equal(DropReason.None, EngineKit.Feed(receiver, senderChannel.Sent(MessageType.Heartbeat).Last()));
        receiver.GetPeerViews(views);
        Assert.Equal((true, ClusterSync.Membership.MemberState.Active), (views[0].Alive, views[0].State));
    }
}
