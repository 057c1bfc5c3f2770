namespace ClusterSync.Core.Tests.Membership;

/// <summary>
/// The dead interval in force toward a peer (SyncEngine.Heartbeat.cs, <c>PeerDeadMs</c>): the configured one plus 4 RTTVAR
/// of the link's measured round trip, at most twice the configured one — and the variation counts only while it is
/// current (a sample within a dead interval before the peer was last heard). Two real stepped engines on one fake clock
/// (<see cref="SteppedCluster"/>); the link's jitter is member 2's datagrams to member 1 held 0–100 ms.
/// </summary>
public sealed class PeerDeadIntervalTests
{
    private static PeerStatus Peer(Member member, byte id) => member.Engine.GetPeerStatus().Single(p => p.MemberId == id);

    /// <summary>
    /// Member 1 (Active) serves a connection every step while member 2's datagrams to it are held for the first half of
    /// every 200 ms (up to 100 ms late): the acknowledgement released with a held stretch makes member 1's round-trip
    /// variation toward member 2 jump to tens of milliseconds (the prompt ones after it bring it down again).
    /// </summary>
    private static SteppedCluster JitteryLinkMeasured(out Func<bool> stopJitter)
    {
        var c = new SteppedCluster([(1, 200), (2, 100)]);
        c.RunUntil(() => c[1].State == MemberState.Active && c[2].State == MemberState.Standby, Dead * 3, "member 1 Active, member 2 Standby");
        int step = 0;
        bool jittery = true;
        c.Hold = (from, to) => jittery && from == 2 && to == 1 ? Math.Max(0, 20 - (step % 40)) : 0;
        for (; step <= 180; step++) // ends at the release of a held stretch: the estimate has just taken its largest sample
        {
            c[1].Engine.Submit(EngineKit.New(EngineKit.Tcp(443, sourcePort: (ushort)(41000 + step))));
            c[1].Engine.StepSender();
            c.Step();
        }

        Assert.True(Peer(c[1], 2).RoundTripVariationMs >= 20, $"variation {Peer(c[1], 2).RoundTripVariationMs:F1} ms: the link was not measured jittery");
        stopJitter = () => jittery = false;
        return c;
    }

    [Fact]
    public void PeerSilent_JitterMeasuredOnlyLongBefore_SeenDeadAfterTheConfiguredDeadInterval()
    {
        // Simulator seed 10244: the only Standby had measured its link to the Active while re-sending its replica over a
        // lossy, jittery link; the link had been clean (and the Standby had sent nothing) for 0.5 s when the Active
        // crashed, and it saw the Active dead 570 ms later instead of 300.
        using var c = JitteryLinkMeasured(out var stopJitter);
        stopJitter();
        c.Run(Dead * 2); // member 1 sends member 2 nothing more: heard (heartbeats), never sampled
        Assert.True(Peer(c[1], 2).Live);
        Assert.True(Peer(c[1], 2).RoundTripVariationMs >= 20, "the estimate itself is unchanged: no sample came");

        c[2].Up = false;
        int steps = c.RunUntil(() => !Peer(c[1], 2).Live, Dead * 3, "member 2 seen dead");

        Assert.True(steps * Tick <= Dead + (2 * Tick), $"member 2 seen dead after {steps * Tick.TotalMilliseconds} ms: a stale estimate stretched the dead interval");
    }

    [Fact]
    public void PeerSilent_JitterMeasuredUntilItFellSilent_DeadIntervalKeepsTheJitterAllowance()
    {
        using var c = JitteryLinkMeasured(out _);
        double variation = Peer(c[1], 2).RoundTripVariationMs;

        c[2].Up = false; // dies while the link is being measured: the estimate is current
        int steps = c.RunUntil(() => !Peer(c[1], 2).Live, Dead * 3, "member 2 seen dead");

        // It died the step its held stretch was released (heard, and sampled, then): it is seen dead the configured dead
        // interval plus the allowance later.
        Assert.True(steps * Tick >= Dead + TimeSpan.FromMilliseconds(Math.Min(4 * variation, Dead.TotalMilliseconds)) - (2 * Tick),
            $"member 2 seen dead after {steps * Tick.TotalMilliseconds} ms with a current variation of {variation:F1} ms: the allowance was not applied");
    }
}
