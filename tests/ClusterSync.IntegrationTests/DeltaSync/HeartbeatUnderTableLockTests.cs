namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// Issue 13 item 1: heartbeats are taken in on a thread no other work can starve. The receiver never waits for the table
/// lock: while it is held (a snapshot step, a status walk, a commit) heartbeats and acks are handled at once and received
/// Data waits on the apply thread (SyncEngine.ApplyBacklog.cs). Two members on loopback UDP, 30 ms heartbeats, dead after 3.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class HeartbeatUnderTableLockTests
{
    private static readonly TimeSpan s_heartbeat = TimeSpan.FromMilliseconds(30);
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(20);

    [Fact]
    public void Heartbeats_TableLockHeldLongerThanDeadInterval_PeerNotDeclaredDead()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { HeartbeatInterval = s_heartbeat, DeadAfterMissedHeartbeats = 3 });
        var a = cluster.Members[0];
        var b = cluster.Members[1];
        double deadMs = s_heartbeat.TotalMilliseconds * 3;

        LoopbackCluster.Fill(b, 1_000);
        Assert.True(LoopbackCluster.WaitUntil(() => a.LiveConnectionCount == 1_000 && a.GetPeerStatus()[0].Live && b.GetPeerStatus()[0].Live, s_settle),
            "the members never heard each other and replicated the first 1,000 connections");

        // Hold a's table lock (as a long snapshot step or commit would) until a has taken in 30 of b's heartbeats while it
        // is held (about 0.9 s, ten dead intervals), at most 4 s; b keeps sending heartbeats and data meanwhile.
        long heartbeatsBefore = a.Counters.HeartbeatsReceived;
        long appliedBefore = a.Counters.UpdatesApplied;
        using var held = new ManualResetEventSlim();
        long heardDuringHold = 0;
        long? ageAtRelease = null;
        bool liveAtRelease = false;
        long appliedDuringHold = -1;
        double heldMs = 0;
        var holder = new Thread(() =>
        {
            lock (a.TableLockForTests)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                held.Set();
                Wait.Until(() => a.Counters.HeartbeatsReceived - heartbeatsBefore >= 30, TimeSpan.FromSeconds(4));
                heardDuringHold = a.Counters.HeartbeatsReceived - heartbeatsBefore;
                var status = a.GetPeerStatus()[0]; // no table lock: peer state only
                ageAtRelease = status.LastHeardAgeMs;
                liveAtRelease = status.Live;
                appliedDuringHold = a.Counters.UpdatesApplied - appliedBefore;
                heldMs = clock.Elapsed.TotalMilliseconds;
            }
        }) { IsBackground = true, Name = "test-table-lock-holder" };
        holder.Start();
        Assert.True(held.Wait(TimeSpan.FromSeconds(10)), "the holder took the table lock");

        // Data from b while a's lock is held: on a receiver that waits for the lock, it stalls heartbeat receipt too.
        for (int i = 0; i < 4; i++)
        {
            LoopbackCluster.Fill(b, 1_000 + (500 * (i + 1))); // the first 1,000 again (unchanged) and 500 new each round
        }

        Assert.True(holder.Join(TimeSpan.FromSeconds(30)), "the holder let go of the lock");

        Assert.True(heardDuringHold >= 30,
            $"a took in {heardDuringHold} of b's heartbeats in {heldMs:F0} ms while its table lock was held (b sends one every {s_heartbeat.TotalMilliseconds} ms)");
        Assert.True(ageAtRelease is { } age && age < deadMs * 3,
            $"b last heard {ageAtRelease} ms before the lock was let go, after {heldMs:F0} ms held (dead after {deadMs} ms)");
        Assert.True(liveAtRelease, "a judged b alive when the lock was let go");
        Assert.Equal(0, appliedDuringHold); // nothing applied under the test's hold: the data really waited

        // Neither side went without the other's heartbeats for anything near the hold (margin for a loaded machine).
        double gapA = a.LongestHeartbeatGapMs(2);
        double gapB = b.LongestHeartbeatGapMs(1);
        Assert.True(gapA < heldMs / 2, $"longest gap between b's heartbeats handled by a: {gapA:F0} ms (lock held {heldMs:F0} ms)");
        Assert.True(gapB < heldMs / 2, $"longest gap between a's heartbeats handled by b: {gapB:F0} ms (lock held {heldMs:F0} ms)");
        Assert.True(a.Counters.ApplyHandoffs >= 1, "a's receiver handed the records to the apply thread instead of waiting");

        // What b sent during the hold is applied after it: the tables end equal.
        Assert.True(LoopbackCluster.WaitUntil(() => SameTable(a, b, 3_000), s_settle),
            $"tables equal after the hold: a {a.LiveConnectionCount}, b {b.LiveConnectionCount} entries");
        Assert.True(a.GetPeerStatus()[0].Live && b.GetPeerStatus()[0].Live);
    }

    [Fact]
    public void ApplyBacklog_OverflowsWhileTableLockHeld_DroppedDatagramsRepairedByResendNoResync()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { HeartbeatInterval = s_heartbeat, DeadAfterMissedHeartbeats = 3, TableCapacity = 1 << 17 });
        var a = cluster.Members[0];
        var b = cluster.Members[1];
        Assert.True(LoopbackCluster.WaitUntil(() => a.GetPeerStatus()[0].Live && b.GetPeerStatus()[0].Live, s_settle), "the members heard each other");

        // Hold a's table lock until the apply backlog has overflowed (b sends far more than it holds), at most 20 s.
        using var held = new ManualResetEventSlim();
        long overflowDrops = 0;
        var holder = new Thread(() =>
        {
            lock (a.TableLockForTests)
            {
                held.Set();
                Wait.Until(() => a.Counters.DropsFor(ClusterSync.Protocol.DropReason.ApplyBacklogFull) > 0, TimeSpan.FromSeconds(20));
                overflowDrops = a.Counters.DropsFor(ClusterSync.Protocol.DropReason.ApplyBacklogFull);
            }
        }) { IsBackground = true, Name = "test-table-lock-holder" };
        holder.Start();
        Assert.True(held.Wait(TimeSpan.FromSeconds(10)), "the holder took the table lock");
        const int Connections = 3 * SyncEngine.ApplyBacklogCapacity;
        LoopbackCluster.Fill(b, Connections);
        Assert.True(holder.Join(TimeSpan.FromSeconds(60)), "the holder let go of the lock");

        Assert.True(overflowDrops > 0, $"the backlog never overflowed ({a.ApplyBacklogCount} records waiting)");
        Assert.True(LoopbackCluster.WaitUntil(() => SameTable(a, b, Connections), s_settle),
            $"tables equal after the hold: a {a.LiveConnectionCount}, b {b.LiveConnectionCount} entries");
        Assert.Equal(0, a.Counters.ResyncNeeded); // repaired by NACK and resend, as lost datagrams are
        Assert.True(a.GetPeerStatus()[0].Live && b.GetPeerStatus()[0].Live);
    }

    private static bool SameTable(SyncEngine a, SyncEngine b, int count)
    {
        var theirs = b.SnapshotTable().ToDictionary(e => e.Key, e => e.Value.Version);
        var ours = a.SnapshotTable();
        return ours.Count == count && theirs.Count == count && ours.All(e => theirs.TryGetValue(e.Key, out ulong v) && v == e.Value.Version);
    }
}
