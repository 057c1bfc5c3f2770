namespace ClusterSync.Core.Tests.Engine;

/// <summary>Anti-entropy between an Active and a Standby on a fake clock, control messages carried by hand.</summary>
public sealed class SyncEngineAntiEntropyTests : IDisposable
{
    private readonly EnginePair _pair = EnginePair.ActiveStandby();

    public SyncEngineAntiEntropyTests()
    {
        _pair.Sender.Start();
        _pair.Time.Advance(TimeSpan.FromSeconds(1)); // the Standby, never heard, no longer holds the send window
    }

    public void Dispose() => _pair.Dispose();

    private static ConnectionKey KeyOf(int i) => ConnectionKey.IPv4(0x0A10_0000u + (uint)i, 0xC0A8_0101, (ushort)(20000 + (i % 30000)), 443, 6);

    /// <summary>Fills the Active with <paramref name="count"/> connections and feeds every data datagram to the Standby.</summary>
    private void Populate(int count)
    {
        for (int i = 0; i < count; i++)
        {
            _pair.Sender.Submit(EngineKit.New(KeyOf(i)));
        }

        _pair.WaitDrained(() => _pair.Sender.Counters.UpdatesSent >= count);
        foreach (var d in _pair.SenderChannel.DataTo(0))
        {
            Assert.Equal(DropReason.None, _pair.Receiver.HandleDatagram(d.AsSpan()));
        }
    }

    /// <summary>
    /// 100 connections on both members and settled, then <paramref name="change"/> sent but not delivered (in flight,
    /// younger than the settle time) when a check runs.
    /// </summary>
    private void CheckWithInFlight(in ConnectionEvent change)
    {
        Populate(100);
        _pair.Sender.OnTick();
        _pair.Time.Advance(TimeSpan.FromSeconds(3));
        _pair.Sender.Submit(change);
        _pair.WaitDrained();
        _pair.Pump();
        _pair.Check();
    }

    private static Dictionary<ConnectionKey, ConnectionEntry> Live(SyncEngine e) => e.SnapshotTable().ToDictionary(kv => kv.Key, kv => kv.Value);

    [Fact]
    public void StartAntiEntropyCheck_GhostLostDestroyAndMissedUpdate_RepairsOnlyDifferingRangesUntilTablesEqual()
    {
        Populate(3000);
        Assert.Equal(3000, _pair.Receiver.SnapshotTable().Count);

        // Divergence of three causes: a lost destroy, a missed update, a ghost the Active never had.
        _pair.Sender.Submit(EngineKit.Destroy(KeyOf(5)));
        _pair.Sender.Submit(EngineKit.Update(KeyOf(7), ProtocolState.TcpFinWait));
        var ghost = ConnectionEvent.Create(ConnectionEventKind.Update, ConnectionKey.IPv4(0x0B00_0001, 0xC0A8_0101, 999, 443, 6), ProtocolState.TcpEstablished, 3600, 0);
        ghost.Entry.Owner = 1;
        ghost.Entry.Version = 42;
        ghost.Entry.UpdatedMs = _pair.Time.GetUtcNow().ToUnixTimeMilliseconds() - 60_000;
        ghost.Entry.CreatedMs = ghost.Entry.UpdatedMs;
        _pair.Receiver.ApplySnapshot([ghost]);
        _pair.WaitDrained();
        _pair.SettleAndCheck();

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyMismatches);
        Assert.Equal(3, _pair.Receiver.Counters.AntiEntropyEntriesRepaired);
        Assert.InRange(_pair.Receiver.Counters.AntiEntropyRangesRepaired, 1, 3); // only the ranges that differ, never the table
        var active = Live(_pair.Sender);
        var standby = Live(_pair.Receiver);
        Assert.Equal(active.Count, standby.Count);
        foreach (var (k, e) in active)
        {
            Assert.True(standby.TryGetValue(k, out var other) && other.SameState(e) && other.Version == e.Version, $"{k} differs");
        }

        // Equal now: the next check costs one digest each way and repairs nothing.
        long sentBefore = _pair.SenderChannel.Sent(MessageType.Digest).Count;
        long requestsBefore = _pair.ReceiverChannel.Sent(MessageType.DigestRequest).Count;
        _pair.Check();
        Assert.Equal(2, _pair.Receiver.Counters.AntiEntropyRootsCompared);
        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyMismatches);
        Assert.Equal(sentBefore + 1, _pair.SenderChannel.Sent(MessageType.Digest).Count);
        Assert.Equal(requestsBefore, _pair.ReceiverChannel.Sent(MessageType.DigestRequest).Count);
    }

    [Fact]
    public void StartAntiEntropyCheck_MissedRelatedConnection_RepairBringsMasterAndMark()
    {
        Populate(100);
        int fed = _pair.SenderChannel.DataTo(0).Count;
        var related = EngineKit.New(ConnectionKey.IPv4(0x0A10_0000, 0xC0A8_0101, 40001, 50123, 6), state: ProtocolState.TcpEstablished);
        related.Entry.Mark = 0x1234;
        related.Entry.Master = KeyOf(0);
        _pair.Sender.Submit(related); // its datagram is lost: never fed to the Standby
        _pair.WaitDrained(() => _pair.SenderChannel.DataTo(0).Count > fed);
        _pair.SettleAndCheck();

        Assert.True(_pair.Receiver.TryGetEntry(related.Key, out var repaired));
        Assert.Equal(KeyOf(0), repaired.Master);
        Assert.Equal(0x1234u, repaired.Mark);
        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyEntriesRepaired);
    }

    [Fact]
    public void StartAntiEntropyCheck_NewConnectionInFlight_NotCountedAsDivergence()
    {
        CheckWithInFlight(EngineKit.New(KeyOf(500))); // not yet delivered, and younger than the settle time

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyRootsCompared);
        Assert.Equal(0, _pair.Receiver.Counters.AntiEntropyMismatches);
    }

    [Fact]
    public void StartAntiEntropyCheck_UpdateInFlight_RemovesNothingTheActiveHolds()
    {
        // An update still in flight makes the ranges differ (the Standby counts the older version); the repair must
        // then bring the newer version, never remove the connection.
        CheckWithInFlight(EngineKit.Update(KeyOf(3), ProtocolState.TcpFinWait));

        Assert.Equal(100, _pair.Receiver.SnapshotTable().Count);
        Assert.True(_pair.Receiver.TryGetEntry(KeyOf(3), out var e) && e.State == ProtocolState.TcpFinWait);
        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyEntriesRepaired);
    }

    [Fact]
    public void StartAntiEntropyCheck_NotActiveOrPeerNotStandby_SendsNothing()
    {
        Populate(10);
        _pair.Receiver.AdvertisedState = (byte)MemberState.Syncing;
        _pair.Pump();
        Assert.Equal(0, _pair.Sender.StartAntiEntropyCheck(_pair.Time.GetTimestamp()));
        Assert.Equal(0, _pair.Sender.Counters.AntiEntropyChecks);
    }

    [Fact]
    public void StartAntiEntropyCheck_ActiveClockBehindTheWriters_StillFindsAndRemovesTheGhost()
    {
        // Seed 199: entries were written under a clock 26 s ahead of the Active's; a cutoff in wall-clock time counted
        // none of them (on either side) and a ghost among them was never found. The cutoff is a version now.
        var ahead = new FakeTimeProvider(EngineKit.Start + TimeSpan.FromSeconds(26.6));
        var ghost = ConnectionEvent.Create(ConnectionEventKind.Update, ConnectionKey.IPv4(0x0B00_0002, 0xC0A8_0101, 998, 443, 6), ProtocolState.TcpEstablished, 3600, 0);
        ghost.Entry.Owner = 3;
        ghost.Entry.UpdatedMs = ahead.GetUtcNow().ToUnixTimeMilliseconds();
        ghost.Entry.CreatedMs = ghost.Entry.UpdatedMs;
        ghost.Entry.Version = (ulong)ghost.Entry.UpdatedMs << 20;
        _pair.Sender.ApplySnapshot([new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = KeyOf(9000), Entry = ghost.Entry }]);
        _pair.Receiver.ApplySnapshot([ghost, new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = KeyOf(9000), Entry = ghost.Entry }]);
        _pair.SettleAndCheck();

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyMismatches);
        Assert.True(!_pair.Receiver.TryGetEntry(ghost.Key, out var g) || (g.Status & ConnectionStatus.Tombstone) != 0, "the ghost is still live");
        Assert.True(_pair.Receiver.TryGetEntry(KeyOf(9000), out var kept) && (kept.Status & ConnectionStatus.Tombstone) == 0);
    }

    [Fact]
    public void StartAntiEntropyCheck_StandbyGhostNamingItselfAsOwner_Removed()
    {
        // Seed 385: a restarted member pulled entries its earlier life owned (as Active); destroyed on the Active
        // meanwhile, they were ghosts on it that its own digests left out, so they were never found.
        Populate(50);
        var ghost = ConnectionEvent.Create(ConnectionEventKind.Update, ConnectionKey.IPv4(0x0B00_0003, 0xC0A8_0101, 997, 443, 6), ProtocolState.TcpEstablished, 3600, 0);
        ghost.Entry.Owner = 2; // the Standby itself
        ghost.Entry.Version = 43;
        ghost.Entry.UpdatedMs = _pair.Time.GetUtcNow().ToUnixTimeMilliseconds() - 60_000;
        ghost.Entry.CreatedMs = ghost.Entry.UpdatedMs;
        _pair.Receiver.ApplySnapshot([ghost]);
        _pair.SettleAndCheck();

        Assert.Equal(1, _pair.Receiver.Counters.AntiEntropyMismatches);
        Assert.True(!_pair.Receiver.TryGetEntry(ghost.Key, out var g) || (g.Status & ConnectionStatus.Tombstone) != 0, "the ghost is still live");
        Assert.Equal(50, _pair.Receiver.SnapshotTable().Count);
    }

    [Fact]
    public void StartAntiEntropyCheck_StandbyHoldsANewerVersionTheActiveNeverHad_TakesTheActives()
    {
        // Seed 78: the last update of a dead Active reached a Standby but not the member that took over; the Standby's
        // newer version never matched the new Active's table.
        Populate(20);
        Assert.True(_pair.Sender.TryGetEntry(KeyOf(4), out var truth));
        var lost = new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = KeyOf(4), Entry = truth };
        lost.Entry.State = ProtocolState.TcpFinWait;
        lost.Entry.Version = truth.Version + 5;
        lost.Entry.Owner = 3; // the dead Active
        _pair.Receiver.ApplySnapshot([lost]);
        _pair.Sender.Submit(EngineKit.Update(KeyOf(5), ProtocolState.TcpFinWait)); // the Active's HLC moves past the lost version
        _pair.WaitDrained();
        _pair.SettleAndCheck();

        Assert.True(_pair.Receiver.TryGetEntry(KeyOf(4), out var now));
        Assert.Equal((truth.Version, truth.State), (now.Version, now.State));
    }

    [Fact]
    public void TryReadHead_PrefixWiderThanDepthOrTooDeep_Malformed()
    {
        var body = new byte[AntiEntropyMessages.RequestSize];
        AntiEntropyMessages.WriteRequest(body, 2, 1000, 1, 64, 1); // depth 1 has 6 prefix bits: 64 does not fit
        Assert.False(AntiEntropyMessages.TryReadRequest(body, out _, out _, out _, out _, out _));
        AntiEntropyMessages.WriteRequest(body, 2, 1000, AntiEntropyMessages.MaxDepth, 0, 1);
        Assert.False(AntiEntropyMessages.TryReadRequest(body, out _, out _, out _, out _, out _));
        AntiEntropyMessages.WriteRequest(body, 2, 1000, 1, 63, 1);
        Assert.True(AntiEntropyMessages.TryReadRequest(body, out ushort target, out long cutoff, out byte depth, out ulong prefix, out ulong mask));
        Assert.Equal((2, 1000L, (byte)1, 63UL, 1UL), (target, cutoff, depth, prefix, mask));
    }
}
