namespace ClusterSync.Core.Tests.Membership;

public sealed class HighAvailabilityElectionTests
{
    private static MemberView M(byte id, byte priority, MemberState state, bool alive = true) => new(id, priority, state, alive);

    [Fact]
    public void Decide_ActiveDead_HighestPriorityStandbyTakesOver()
    {
        MemberView[] peersOf2 = [M(1, 200, MemberState.Active, alive: false), M(3, 50, MemberState.Standby)];
        MemberView[] peersOf3 = [M(1, 200, MemberState.Active, alive: false), M(2, 100, MemberState.Standby)];
        Assert.Equal(ElectionOutcome.TakeOver, HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), peersOf2, preemption: false));
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(3, 50, MemberState.Standby), peersOf3, preemption: false));
    }

    [Fact]
    public void Decide_EqualPriority_LowerIdTakesOver()
    {
        Assert.Equal(ElectionOutcome.TakeOver, HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(3, 100, MemberState.Standby)], false));
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(3, 100, MemberState.Standby), [M(2, 100, MemberState.Standby)], false));
    }

    [Fact]
    public void Decide_SyncingOrInitMember_NeverTakesOver()
    {
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(1, 255, MemberState.Syncing), [M(2, 1, MemberState.Active, alive: false)], true));
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(1, 255, MemberState.Init), [], true));
    }

    [Fact]
    public void Decide_HigherRankedPeerStillSyncing_DoesNotBlockTakeOver()
    {
        // Member 1 outranks but cannot take over yet: member 2 must.
        Assert.Equal(ElectionOutcome.TakeOver, HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(1, 200, MemberState.Syncing)], false));
    }

    [Fact]
    public void Decide_HigherRankedPeerStillInInit_WaitsForIt()
    {
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(1, 200, MemberState.Init)], false));
        Assert.Equal(ElectionOutcome.TakeOver, HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(1, 200, MemberState.Init, alive: false)], false));
    }

    [Fact]
    public void Decide_TwoHigherRankedPeersInInit_WaitsForThem()
    {
        // Two starting members that both outrank this one must not cancel each other out (split brain at start-up).
        Assert.Equal(ElectionOutcome.Stay,
            HighAvailabilityElection.Decide(M(3, 100, MemberState.Standby), [M(1, 200, MemberState.Init), M(2, 150, MemberState.Init)], false));
        Assert.Equal(ElectionOutcome.Stay,
            HighAvailabilityElection.Decide(M(3, 100, MemberState.Standby), [M(1, 200, MemberState.Init), M(2, 150, MemberState.Init), M(4, 120, MemberState.Init)], false));
    }

    [Fact]
    public void Decide_HigherRankedPeerInInitAfterAnActiveWasSeen_TakesOver()
    {
        // Not forming any more: a member in Init is a restarted one that will join as Standby; it does not hold the role.
        Assert.Equal(ElectionOutcome.TakeOver,
            HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(1, 200, MemberState.Init)], false, waitForStarting: false));
        Assert.Equal(ElectionOutcome.Stay,
            HighAvailabilityElection.Decide(M(2, 100, MemberState.Standby), [M(1, 200, MemberState.Standby)], false, waitForStarting: false));
    }

    [Fact]
    public void Decide_ActiveAlive_StandbyStaysWithoutPreemption()
    {
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(1, 200, MemberState.Standby), [M(2, 100, MemberState.Active)], preemption: false));
    }

    [Fact]
    public void Decide_Preemption_HigherRankedStandbyTakesBackAndOldActiveStepsDown()
    {
        Assert.Equal(ElectionOutcome.Preempt, HighAvailabilityElection.Decide(M(1, 200, MemberState.Standby), [M(2, 100, MemberState.Active)], preemption: true));
        // Then the former Active sees two Actives and yields to the higher rank.
        Assert.Equal(ElectionOutcome.StepDownSplitBrain, HighAvailabilityElection.Decide(M(2, 100, MemberState.Active), [M(1, 200, MemberState.Active)], preemption: true));
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(1, 200, MemberState.Active), [M(2, 100, MemberState.Active)], preemption: true));
    }

    [Fact]
    public void Decide_SplitBrainAfterPartition_ExactlyOneStaysActive()
    {
        var members = new[] { M(1, 100, MemberState.Active), M(2, 100, MemberState.Active), M(3, 150, MemberState.Active) };
        int staying = 0;
        foreach (var self in members)
        {
            var peers = members.Where(m => m.Id != self.Id).ToArray();
            var outcome = HighAvailabilityElection.Decide(self, peers, preemption: false);
            Assert.True(outcome is ElectionOutcome.Stay or ElectionOutcome.StepDownSplitBrain);
            if (outcome == ElectionOutcome.Stay)
            {
                staying++;
                Assert.Equal(3, self.Id); // highest priority wins
            }
        }

        Assert.Equal(1, staying);
    }

    [Fact]
    public void Decide_DeadActivePeer_IgnoredForSplitBrain()
    {
        Assert.Equal(ElectionOutcome.Stay, HighAvailabilityElection.Decide(M(2, 100, MemberState.Active), [M(1, 200, MemberState.Active, alive: false)], false));
    }
}
