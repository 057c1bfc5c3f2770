namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// What the fault simulator found on branch soak14: the split-brain handover (a loser re-sends its table before it steps
/// down; a Standby re-sends its replica to a new Active), entries of an earlier life coming back announced, and the
/// anti-entropy cutoff a Standby raises when it holds versions the Active's clock never reached.
/// </summary>
public sealed class SyncEngineHandoverTests
{
    private static ConnectionEvent Replica(int i, byte owner, long nowMs)
    {
        var e = ConnectionEvent.Create(ConnectionEventKind.Update, KeyOf(i), ProtocolState.TcpEstablished, 3600, 0);
        e.Entry.Owner = owner;
        e.Entry.CreatedMs = e.Entry.UpdatedMs = nowMs;
        e.Entry.Version = ((ulong)nowMs << 20) + (ulong)i;
        return e;
    }

    private static ConnectionKey KeyOf(int i) => ConnectionKey.IPv4(0x0A20_0000u + (uint)i, 0xC0A8_0101, (ushort)(20000 + i), 443, 6);

    [Fact]
    public void BeginHandover_ReplicasOfOtherMembers_SentButNotTheWinnersOwnConnections()
    {
        using var pair = new EnginePair();
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([Replica(1, owner: 3, now), Replica(2, owner: 2, now)]);
        pair.Sender.Submit(EngineKit.New(KeyOf(3)));
        pair.WaitDrained();
        int before = pair.SenderChannel.DataTo(0).Count;

        pair.Sender.BeginHandover(winner: 2);

        pair.WaitDrained();
        var sent = EngineKit.DecodeAll(pair.SenderChannel.DataTo(0).Skip(before), pair.Key, pair.Sender).Select(r => r.Key).ToList();
        Assert.Contains(KeyOf(1), sent);    // the third member's connection this member holds
        Assert.Contains(KeyOf(3), sent);    // its own
        Assert.DoesNotContain(KeyOf(2), sent); // the winner wrote it: a copy could only bring back what it destroyed
        Assert.False(pair.Sender.HandedOverTo(2)); // not acknowledged yet
        pair.Sender.EndHandover();
    }

    [Fact]
    public void BeginHandover_Paced_QueuesOneStepAtOnceTheRestOnLaterTicksAndSendsEveryReplica()
    {
        // Issue 13: a Standby re-sending its 1,000,000-entry replica to a new Active queued all of it at once, and the new
        // Active applied it all while it committed its own replica into the kernel. Paced: one step per control tick.
        const int Entries = SyncEngine.HandoverWalkStep + 2000;
        using var pair = new EnginePair(startSender: false);
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([.. Enumerable.Range(1, Entries).Select(i => Replica(i, owner: 3, now))]);

        pair.Sender.BeginHandover(winner: 2, paced: true);

        Assert.InRange(pair.Sender.PendingCount, 1, SyncEngine.HandoverWalkStep);
        Assert.True(pair.Sender.HandoverWalkUnderway);
        Assert.True(pair.Sender.HandoverQueued);
        Assert.False(pair.Sender.HandedOverTo(2)); // the rest of the table is still to be queued
        pair.Sender.Start();
        int fed = 0, acked = 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((pair.Sender.HandoverWalkUnderway || pair.Sender.PendingCount != 0 || pair.SenderChannel.DataTo(0).Count > fed
                || pair.SentRecords().Select(r => r.Key).Distinct().Count() < Entries) && DateTime.UtcNow < deadline)
        {
            // The receiver takes the data and acknowledges it, so the sender's window keeps opening.
            // Until the sender has sent something new (or has nothing left queued): no fixed pause per round.
            pair.SenderChannel.WaitUntil(c => c.SentTo(0).Count > fed || pair.Sender.PendingCount == 0, TimeSpan.FromSeconds(5));
            var data = pair.SenderChannel.SentTo(0);
            for (; fed < data.Count; fed++)
            {
                pair.Feed(data[fed]);
            }

            pair.Receiver.OnTick();
            var acks = pair.ReceiverChannel.SentTo(0);
            for (; acked < acks.Count; acked++)
            {
                pair.FeedBack(acks[acked]);
            }

            pair.Sender.OnTick();
        }

        Assert.False(pair.Sender.HandoverWalkUnderway);
        Assert.Equal(0, pair.Sender.PendingCount);
        Assert.True(pair.Sender.HandoverWalkSteps >= 2, $"{pair.Sender.HandoverWalkSteps} steps");
        var sent = pair.SentRecords().Select(r => r.Key).ToHashSet();
        Assert.All(Enumerable.Range(1, Entries), i => Assert.Contains(KeyOf(i), sent));
        pair.Sender.EndHandover();
    }

    [Fact]
    public void EndHandover_PacedWalkUnderway_StopsTheWalk()
    {
        using var pair = new EnginePair(startSender: false);
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([.. Enumerable.Range(1, SyncEngine.HandoverWalkStep + 100).Select(i => Replica(i, owner: 3, now))]);
        pair.Sender.BeginHandover(winner: 2, paced: true);
        Assert.True(pair.Sender.HandoverWalkUnderway);

        pair.Sender.EndHandover();

        Assert.False(pair.Sender.HandoverWalkUnderway);
        Assert.False(pair.Sender.HandoverQueued);
    }

    [Fact]
    public void BeginRelay_FirstTime_NextTickResendsEveryReplicaIncludingTheFollowedActivesOwn()
    {
        using var pair = new EnginePair();
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([Replica(1, owner: 3, now), Replica(2, owner: 2, now)]);
        int before = pair.SenderChannel.DataTo(0).Count;

        pair.Sender.BeginRelay(active: 2);
        pair.Sender.OnTick();

        // The queue empties before its datagram is sent: wait for the records themselves (both, or the timeout).
        List<ConnectionKey> sent = [];
        pair.SenderChannel.WaitUntil(c =>
        {
            sent = EngineKit.DecodeAll(c.DataTo(0).Skip(before), pair.Key, pair.Sender).Select(r => r.Key).ToList();
            return sent.Contains(KeyOf(1)) && sent.Contains(KeyOf(2));
        }, TimeSpan.FromSeconds(10));
        pair.WaitDrained();
        Assert.Contains(KeyOf(1), sent); // the other Active's connection, for the followed one
        Assert.Contains(KeyOf(2), sent); // the followed Active's own, for the other one (it may have missed it)
        int afterFirst = pair.SenderChannel.DataTo(0).Count;

        pair.Sender.BeginRelay(active: 2); // still relaying: no second re-send
        pair.Sender.OnTick();

        Assert.Equal(afterFirst, pair.SenderChannel.DataTo(0).Count);
        pair.Sender.EndRelay();
        pair.Sender.EndHandover();
    }

    [Fact]
    public void RelaysUnfollowed_Cleared_EndsTheRelayAndItsDueReSend()
    {
        using var pair = new EnginePair();
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([Replica(1, owner: 3, now)]);
        pair.Sender.RelaysUnfollowed = true;
        pair.Sender.BeginRelay(active: 2);
        int before = pair.SenderChannel.DataTo(0).Count;

        pair.Sender.RelaysUnfollowed = false; // promoted (or never a Standby in high availability)
        pair.Sender.OnTick();

        Assert.False(pair.Sender.Relaying);
        Assert.True(pair.SenderChannel.WaitUntil(_ => pair.Sender.PendingCount == 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(before, pair.SenderChannel.DataTo(0).Count); // the replica re-send that was due did not run
        pair.Sender.EndHandover();
    }

    [Fact]
    public void HandedOverTo_NothingEverSent_TrueAtOnce()
    {
        using var pair = new EnginePair();

        pair.Sender.BeginHandover(winner: 2);

        Assert.True(pair.Sender.HandedOverTo(2));
        pair.Sender.EndHandover();
    }

    [Fact]
    public void EndHandover_PendingReplicaOfAnotherMember_NotSentAnyMore()
    {
        using var pair = new EnginePair(startSender: false);
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([Replica(1, owner: 3, now)]);
        pair.Sender.BeginHandover(winner: 2);
        pair.Sender.EndHandover();

        pair.Sender.Start();

        pair.WaitDrained();
        Assert.Empty(EngineKit.DecodeAll(pair.SenderChannel.DataTo(0), pair.Key, pair.Sender));
    }

    [Fact]
    public void Apply_OwnConnectionOfAnEarlierLife_AnnouncedSoItsDestroyIsSent()
    {
        // An entry naming this member as owner came back through a peer (its earlier life wrote it). Left unannounced,
        // an Active neither counted it in anti-entropy nor sent its destroy: Standbys lacked it or kept it as a ghost.
        using var pair = new EnginePair();
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        pair.Sender.ApplySnapshot([Replica(1, owner: 1, now)]);

        pair.Sender.Submit(EngineKit.Destroy(KeyOf(1)));

        pair.WaitDrained(() => pair.SenderChannel.DataTo(0).Count > 0);
        var sent = EngineKit.DecodeAll(pair.SenderChannel.DataTo(0), pair.Key, pair.Sender);
        Assert.Contains(sent, r => r.Key == KeyOf(1) && r.Kind == ConnectionEventKind.Destroy);
    }

    [Fact]
    public void AntiEntropy_StandbyHoldsVersionsAheadOfTheActivesClock_AsksAtItsOwnCutoffAndTheGhostGoes()
    {
        // Seeds 528, 802: entries written under a clock 70 s ahead reached a Standby only; the Active's clock never saw
        // those versions, so they stayed above its cutoff on both sides and a ghost among them was never found.
        using var pair = EnginePair.ActiveStandby();
        long now = pair.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var shared = Replica(1, owner: 3, now);
        var ghost = Replica(2, owner: 3, now + 70_000);
        pair.Sender.ApplySnapshot([shared]);
        pair.Receiver.ApplySnapshot([shared, ghost]);
        pair.Sender.OnTick();
        pair.Receiver.OnTick();

        for (int round = 0; round < 3; round++)
        {
            pair.Time.Advance(TimeSpan.FromSeconds(3));
            pair.Pump();
            pair.Check();
        }

        Assert.True(!pair.Receiver.TryGetEntry(ghost.Key, out var g) || (g.Status & ConnectionStatus.Tombstone) != 0, "the ghost is still live");
        Assert.True(pair.Receiver.TryGetEntry(shared.Key, out var kept) && (kept.Status & ConnectionStatus.Tombstone) == 0);
    }
}
