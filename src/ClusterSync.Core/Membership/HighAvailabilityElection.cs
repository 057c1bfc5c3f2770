namespace ClusterSync.Membership;

/// <summary>What the election decided for the local member, and why.</summary>
public enum ElectionOutcome
{
    /// <summary>Nothing to change.</summary>
    Stay,
    /// <summary>No live Active member: the highest-ranked eligible member (this one) takes over.</summary>
    TakeOver,
    /// <summary>Preemption: this member outranks the current Active and takes over.</summary>
    Preempt,
    /// <summary>Two Active members (a partition healed, or a preempting member took over): the lower-ranked one steps down.</summary>
    StepDownSplitBrain,
}

/// <summary>
/// The high-availability election as a pure function of what the member sees, so every member reaches the
/// same answer from the same heartbeats: one Active; when it dies, the highest-ranked eligible member takes over
/// (rank = priority, then lower member id); with preemption, a higher-ranked member takes the role back;
/// two Actives after a partition resolve to the higher-ranked one. A Promoting member (taking over, its commit under way)
/// counts as Active on both sides: a Standby does not take over beside it, and a Promoting or Active member that sees
/// one of higher rank gets <see cref="ElectionOutcome.StepDownSplitBrain"/> (a Promoting one abandons its promotion).
/// </summary>
/// <remarks>
/// A Standby waits for a higher-ranked member still in Init only while the cluster is forming
/// (<c>waitForStarting</c>: no Active member seen yet). Once an Active has been seen, a member in Init is a restarted
/// one (it will join through a full sync and report Standby): waiting for it would leave the cluster without an
/// Active, and if it finished its join first it would take the role back although preemption is off.
/// </remarks>
public static class HighAvailabilityElection
{
    public static ElectionOutcome Decide(in MemberView self, ReadOnlySpan<MemberView> peers, bool preemption, bool waitForStarting = true)
    {
        if (!self.Eligible)
        {
            return ElectionOutcome.Stay;
        }

        bool activePeer = false;
        bool higherActivePeer = false;   // Active or Promoting, of higher rank
        bool higherServingPeer = false;  // Active (its commit done), of higher rank
        bool higherEligiblePeer = false;
        bool higherStarting = false;
        foreach (ref readonly var p in peers)
        {
            if (!p.Alive)
            {
                continue;
            }

            bool outranksMe = p.Outranks(self);
            if (p.HoldsRole)
            {
                activePeer = true;
                higherActivePeer |= outranksMe;
                higherServingPeer |= outranksMe && p.State == MemberState.Active;
            }

            if (p.Eligible && outranksMe)
            {
                higherEligiblePeer = true;
            }

            // A higher-ranked member still in Init decides within one dead interval: wait for it rather than
            // becoming Active and splitting the brain at start-up. (One that is Syncing may take long: no wait.)
            higherStarting |= waitForStarting && p.State == MemberState.Init && outranksMe;
        }

        if (self.HoldsRole)
        {
            // An Active member yields only to a higher-ranked member that is Active itself (its commit done), so there is
            // no moment without an Active; a Promoting one abandons for a higher-ranked Promoting one too (it serves nothing yet).
            if (self.State == MemberState.Active ? higherServingPeer : higherActivePeer)
            {
                return ElectionOutcome.StepDownSplitBrain;
            }

            // With preemption a higher-ranked Standby takes over; this member yields when it sees it Active
            // (the split-brain rule above), never before, so there is no moment without an Active member.
            return ElectionOutcome.Stay;
        }

        // Standby.
        if (!activePeer)
        {
            return higherEligiblePeer || higherStarting ? ElectionOutcome.Stay : ElectionOutcome.TakeOver;
        }

        if (preemption && !higherActivePeer && !higherEligiblePeer)
        {
            return ElectionOutcome.Preempt;
        }

        return ElectionOutcome.Stay;
    }
}
