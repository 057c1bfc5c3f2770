using ClusterSync.DataPlane;

namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// Promotion off the control tick (Membership/README.md, "Promotion and the failover commit"): a member that takes over
/// is Promoting at once, commits elsewhere, and is Active only when the commit is done; Standbys agree on one successor.
/// Real stepped engines on one fake clock (<see cref="SteppedCluster"/>); a member's promotion steps are held or run on
/// threads where the test needs a commit that takes long.
/// </summary>
public sealed class MembershipPromotionTests
{
    private static SteppedCluster Formed((byte, byte)[] members, Func<byte, InMemoryReplicaSink, IReplicaSink>? wrapSink = null)
    {
        var c = new SteppedCluster(members, wrapSink: wrapSink);
        c.RunUntil(() => c[1].State == MemberState.Active && c.Members.Skip(1).All(m => m.State == MemberState.Standby), Dead * 4, "formed");
        return c;
    }

    private static MemberState SeenBy(Member viewer, byte peer)
    {
        var views = new MemberView[8];
        int n = viewer.Engine.GetPeerViews(views);
        return views.AsSpan(0, n).ToArray().Single(v => v.Id == peer) is { Alive: true } v ? v.State : MemberState.Down;
    }

    /// <summary>Holds every promotion step of a member until the test runs it (a commit that takes as long as the test wants).</summary>
    private sealed class HeldSteps
    {
        public List<Action> Pending { get; } = [];

        public void Run(Action work) => Pending.Add(work);

        public void RunAll()
        {
            var now = Pending.ToList();
            Pending.Clear();
            now.ForEach(w => w());
        }
    }

    [Fact]
    public void ActiveDies_TwoStandbysSeeItAtOnce_ExactlyOneTakesOverAndTheOtherSeesItPromoting()
    {
        using var c = Formed([(1, 200), (2, 150), (3, 100)]);
        var states3 = new List<MemberState>();
        var seen2By3 = new HashSet<MemberState>();
        var states2 = new List<MemberState>();
        c[2].Controller.StateChanged += (_, to) => states2.Add(to);
        c[3].Controller.StateChanged += (_, to) => states3.Add(to);

        c[1].Up = false; // both Standbys see it die on the same tick: one network, one clock
        c.RunUntil(() =>
        {
            seen2By3.Add(SeenBy(c[3], 2));
            return c[2].State == MemberState.Active;
        }, Dead * 2, "member 2 Active");
        c.Run(Dead * 3);

        Assert.Equal([MemberState.Promoting, MemberState.Active], states2);
        Assert.Empty(states3); // never Promoting, never Active
        Assert.Contains(MemberState.Promoting, seen2By3); // the announcement reached it before the commit was done
        Assert.Equal(1, c[2].Controller.Failovers);
        Assert.Equal(0, c[3].Controller.Failovers);
        Assert.Equal(1, c[2].Sink.Commits);
        Assert.Equal(0, c[3].Sink.Commits);
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.NotNull(c[2].Controller.LastPromotion);
        Assert.True(c[2].Controller.LastPromotion!.CommitFinishedUnixMs >= c[2].Controller.LastPromotion!.PromotingUnixMs);
    }

    [Fact]
    public void LowerRankedStandbyPromotingOnAnOlderView_SeesHigherRankedPromoting_AbandonsBeforeCommitting()
    {
        using var c = Formed([(1, 200), (2, 150), (3, 100)]);
        var held2 = new HeldSteps();
        var held3 = new HeldSteps();
        c[2].Controller.PromotionRunner = held2.Run;
        c[3].Controller.PromotionRunner = held3.Run;

        c.Cut(2, 3); // member 3 stops hearing member 2: on its view member 2 is dead
        c.RunUntil(() => SeenBy(c[3], 2) == MemberState.Down, Dead * 2, "member 3 sees member 2 dead");
        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Promoting && c[3].State == MemberState.Promoting, Dead * 2, "both Promoting on their own views");

        c.Heal(2, 3);
        c.RunUntil(() => c[3].State == MemberState.Standby, Dead, "member 3 abandons for member 2");
        held3.RunAll(); // its snapshot step, late: the promotion was abandoned, nothing follows
        c.Run(Tick * 4);
        Assert.Empty(held3.Pending);

        held2.RunAll(); // member 2's snapshot
        c.RunUntil(() => held2.Pending.Count > 0, Dead, "member 2 starts its commit");
        held2.RunAll(); // its commit
        c.RunUntil(() => c[2].State == MemberState.Active, Dead, "member 2 Active");
        c.Run(Dead * 3);

        Assert.Equal(0, c[3].Sink.Commits); // it never committed anything into its data plane
        Assert.Equal(0, c[3].Controller.Failovers);
        Assert.Equal(1, c[3].Controller.PromotionsAbandoned);
        Assert.Single(c[3].Logger.Of(1331));
        Assert.Contains("member 2 of higher rank is Promoting", c[3].Logger.Of(1331)[0]);
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.Equal(1, c[2].Controller.Failovers);
        Assert.Equal(0, c[2].Controller.PromotionsAbandoned);
    }

    /// <summary>
    /// Simulator seed 3467: the higher-ranked Standby is heard alive but does not take over (a lossy, jittery link stretched
    /// its view of the dead Active; then it died too). The next-ranked Standby waits for it only for the successor window
    /// (four ack intervals here, the links' round trips being nil), not until it is seen dead.
    /// </summary>
    [Fact]
    public void HigherRankedStandbyAliveButNotTakingOver_NextRankedTakesOverAfterTheSuccessorWindow()
    {
        using var c = Formed([(1, 200), (2, 150), (3, 100)]);
        c[2].Controller.Dispose();
        c[2].Engine.AdvertisedState = (byte)MemberState.Standby; // alive and heard, synchronized, but it never decides
        c.Run(Tick * 4);
        DateTimeOffset? promoting3 = null;
        c[3].Controller.StateChanged += (_, to) => promoting3 ??= to == MemberState.Promoting ? c.Time.GetUtcNow() : null;

        c[1].Up = false;
        c.RunUntil(() => SeenBy(c[3], 1) == MemberState.Down, Dead * 2, "member 3 sees the Active dead");
        var roleFree = c.Time.GetUtcNow();
        c.RunUntil(() => c[3].State == MemberState.Active, Dead, "member 3 takes over");

        Assert.NotNull(promoting3);
        var waited = promoting3!.Value - roleFree;
        Assert.True(waited >= Tick * 3 && waited <= Tick * 6, $"member 3 waited {waited.TotalMilliseconds} ms for member 2 (the window: 4 ack intervals)");
        Assert.Equal(MemberState.Standby, SeenBy(c[3], 2));
        Assert.Contains("member 2 of higher rank did not take over within", c[3].Controller.LastReason, StringComparison.Ordinal);
        Assert.Equal(1, c[3].Controller.Failovers);
    }

    [Fact]
    public void HigherRankedPromotingForLong_LowerRankedStandbyDoesNotTakeOver()
    {
        using var c = Formed([(1, 200), (2, 150), (3, 100)]);
        var held2 = new HeldSteps();
        c[2].Controller.PromotionRunner = held2.Run;

        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Promoting, Dead * 2, "member 2 Promoting");
        c.Run(Dead * 4); // its snapshot never ends: Promoting for four dead intervals, alive and heard

        Assert.Equal(MemberState.Promoting, SeenBy(c[3], 2));
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.Equal(0, c[3].Controller.Failovers);

        held2.RunAll();
        c.RunUntil(() => held2.Pending.Count > 0, Dead, "member 2 starts its commit");
        held2.RunAll();
        c.RunUntil(() => c[2].State == MemberState.Active, Dead, "member 2 Active");
        Assert.Equal(MemberState.Standby, c[3].State);
    }

    [Fact]
    public void PromotingMemberDiesMidCommit_NextRankedTakesOverAfterTheDeadInterval()
    {
        using var c = Formed([(1, 200), (2, 150), (3, 100)]);
        var held2 = new HeldSteps();
        c[2].Controller.PromotionRunner = held2.Run;

        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Promoting, Dead * 2, "member 2 Promoting");
        held2.RunAll(); // the snapshot
        c.RunUntil(() => held2.Pending.Count > 0, Dead, "member 2's commit under way");
        c.Run(Tick * 2);
        Assert.Equal(MemberState.Promoting, c[2].State);

        c[2].Up = false; // dies with its commit under way
        var died = c.Time.GetUtcNow();
        DateTimeOffset? promoting3 = null;
        c[3].Controller.StateChanged += (_, to) => promoting3 ??= to == MemberState.Promoting ? c.Time.GetUtcNow() : null;
        c.RunUntil(() => c[3].State == MemberState.Active, Dead * 3, "member 3 takes over");

        Assert.NotNull(promoting3);
        // Dead for member 3 a dead interval after it last heard member 2: its last heartbeat or ack, at most a heartbeat
        // interval (100 ms) before it died.
        Assert.True(promoting3 - died >= Dead - TimeSpan.FromMilliseconds(100) - Tick, $"member 3 took over {(promoting3 - died)!.Value.TotalMilliseconds} ms after member 2 died: before the dead interval");
        Assert.True(promoting3 - died <= Dead + (Tick * 6), $"member 3 took over {(promoting3 - died)!.Value.TotalMilliseconds} ms after member 2 died");
        Assert.Equal(1, c[3].Controller.Failovers);
        Assert.Equal(1, c[3].Sink.Commits);
    }

    /// <summary>A data plane whose commit blocks until the test releases it.</summary>
    private sealed class BlockingSink(InMemoryReplicaSink inner) : IReplicaSink, IDisposable
    {
        public ManualResetEventSlim Entered { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public string Name => "blocking";

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
        {
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(60));
            inner.Commit(replica);
        }

        public void Dispose()
        {
            Release.Set();
            Entered.Dispose();
            Release.Dispose();
        }
    }

    [Fact]
    public void SlowSinkCommitting_HeartbeatsKeepFlowing_PeersSeeThePromotingMemberAliveUntilItIsActive()
    {
        BlockingSink? slow = null;
        using var c = Formed([(1, 200), (2, 150), (3, 100)], (id, sink) => id == 2 ? slow = new BlockingSink(sink) : sink);
        using var _ = slow;
        var threads = new List<Thread>();
        c[2].Controller.PromotionRunner = work =>
        {
            var t = new Thread(() => work()) { IsBackground = true, Name = "test-promotion" };
            lock (threads)
            {
                threads.Add(t);
            }

            t.Start();
        };
        Thread? Started(int i)
        {
            lock (threads)
            {
                return threads.Count > i ? threads[i] : null;
            }
        }

        for (int i = 0; i < 10; i++)
        {
            c[1].Engine.Submit(EngineKit.New(EngineKit.Tcp(443, sourcePort: (ushort)(40000 + i))));
        }

        c[1].Engine.StepSender();

        c.Run(Tick * 4);
        c[1].Up = false;
        c.RunUntil(() => c[2].State == MemberState.Promoting, Dead * 2, "member 2 Promoting");
        Assert.True(Started(0)!.Join(TimeSpan.FromSeconds(30)), "the snapshot step ended");
        c.RunUntil(() => Started(1) is not null, Dead, "member 2 starts its commit");
        Assert.True(slow!.Entered.Wait(TimeSpan.FromSeconds(30)), "the commit reached the sink");

        long sentBefore = c[2].Engine.Counters.HeartbeatsSent;
        c.Run(Dead * 5); // the commit blocks for five dead intervals of the cluster's clock
        long sent = c[2].Engine.Counters.HeartbeatsSent - sentBefore;

        Assert.True(sent >= 14, $"member 2 sent {sent} heartbeats in 1.5 s of its clock while its commit blocked");
        Assert.Equal(MemberState.Promoting, c[2].State);
        Assert.Equal(MemberState.Promoting, SeenBy(c[3], 2));
        Assert.Equal(MemberState.Standby, c[3].State);
        Assert.Equal(0, c[3].Controller.Failovers);

        slow.Release.Set();
        Assert.True(Started(1)!.Join(TimeSpan.FromSeconds(30)), "the commit step ended");
        c.RunUntil(() => c[2].State == MemberState.Active, Dead, "member 2 Active once its commit is done");
        Assert.Equal(10, c[2].Controller.LastCommitted);
        Assert.Equal(10, c[2].Sink.CommittedSnapshot.Count);
    }
}
