namespace ClusterSync.Simulation;

/// <summary>What can go wrong in a run (README.md, "Fault model").</summary>
internal enum FaultKind
{
    /// <summary>Loss, duplication, reordering and delay on some links for a while.</summary>
    Degrade,
    /// <summary>A member cut off from every peer (both directions) for a while.</summary>
    Isolate,
    /// <summary>One direction of one link cut for a while.</summary>
    OneWayCut,
    /// <summary>A member killed (no farewell) and started again later with an empty table (it must join by full sync).</summary>
    Crash,
    /// <summary>A member killed and started again at once (within the dead interval: its peers never see it dead).</summary>
    FastRestart,
    /// <summary>A member restarted with a wrong cluster key (until its next restart).</summary>
    WrongKey,
    /// <summary>A member's wall clock jumps (forward or back); its monotonic clock does not.</summary>
    ClockJump,
    /// <summary>Full-sync transfers cut at a random byte for a while (a connection reset mid-transfer).</summary>
    CutTransfers,
}

/// <summary>One drawn fault: when, what, whom, how hard and for how long.</summary>
internal sealed record FaultEvent(TimeSpan At, FaultKind Kind, byte Member, byte Peer, double Magnitude, TimeSpan Duration, bool TargetsActive)
{
    public override string ToString() => Kind switch
    {
        FaultKind.Degrade => $"{At.TotalSeconds:F3}s degrade links of m{Member} (loss {Magnitude:P0}) for {Duration.TotalSeconds:F2}s",
        FaultKind.Isolate => $"{At.TotalSeconds:F3}s isolate {Who} for {Duration.TotalSeconds:F2}s",
        FaultKind.OneWayCut => $"{At.TotalSeconds:F3}s cut m{Member}->m{Peer} for {Duration.TotalSeconds:F2}s",
        FaultKind.Crash => $"{At.TotalSeconds:F3}s crash {Who}, restart after {Duration.TotalSeconds:F2}s",
        FaultKind.FastRestart => $"{At.TotalSeconds:F3}s fast restart of {Who}",
        FaultKind.WrongKey => $"{At.TotalSeconds:F3}s restart {Who} with a wrong key",
        FaultKind.ClockJump => $"{At.TotalSeconds:F3}s wall clock of m{Member} jumps {Magnitude:+0.0;-0.0}s",
        FaultKind.CutTransfers => $"{At.TotalSeconds:F3}s full-sync transfers cut ({Magnitude:P0}) for {Duration.TotalSeconds:F2}s",
        _ => Kind.ToString(),
    };

    private string Who => TargetsActive ? "the Active" : $"m{Member}";
}

/// <summary>
/// Everything a run draws from its seed before it starts: the cluster, the engine's sizes (scaled down so that a few
/// simulated seconds reach the regimes that matter: a wrapped resend buffer, a full send window, expired tombstones),
/// the churn, and the fault schedule. Faults happen in [0.5 s, <see cref="HealAt"/>); then the network heals, every
/// member is up with the right key, churn runs <see cref="ChurnAfterHeal"/> more and stops, and the invariants are
/// checked <see cref="ConvergenceBound"/> later.
/// </summary>
internal sealed record Scenario
{
    public int Seed { get; init; }
    public int Members { get; init; } = 3;
    public byte[] Priorities { get; init; } = [];
    public TimeSpan HealAt { get; init; }
    public TimeSpan ChurnAfterHeal { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long after churn stopped every Standby must equal the Active: at least 3 s (retransmission, resync, a join),
    /// and at least two anti-entropy rounds after the settle time (a divergence that only anti-entropy repairs is found
    /// by the first check that counts the last changes, at most one interval after they settled).
    /// </summary>
    public TimeSpan ConvergenceBound => TimeSpan.FromTicks(Math.Max(MinimumConvergenceBound.Ticks, (AntiEntropySettle + (2 * AntiEntropyInterval)).Ticks));

    public TimeSpan MinimumConvergenceBound { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>The engine's anti-entropy period in the simulation (the 10 s default is longer than a run).</summary>
    public TimeSpan AntiEntropyInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How old a change must be before anti-entropy counts it.</summary>
    public TimeSpan AntiEntropySettle { get; init; } = TimeSpan.FromMilliseconds(500);
    public int ResendBufferDatagrams { get; init; }
    public int SendWindowDatagrams { get; init; }
    public TimeSpan TombstoneTtl { get; init; }
    public int ChurnPerSecond { get; init; }
    public int TargetLive { get; init; }
    public IReadOnlyList<FaultEvent> Faults { get; init; } = [];

    public TimeSpan ChurnStopAt => HealAt + ChurnAfterHeal;

    public TimeSpan CheckAt => ChurnStopAt + ConvergenceBound;

    /// <summary>Draws a scenario from <paramref name="seed"/> (its own random source: the schedule never depends on how the run goes).</summary>
    public static Scenario Draw(int seed)
    {
        var r = new Random(unchecked(seed * 7919 + 17));
        int members = r.NextDouble() < 0.7 ? 3 : r.NextDouble() < 0.5 ? 2 : 4;
        var priorities = new byte[members + 1];
        bool samePriority = r.NextDouble() < 0.6;
        for (int i = 1; i <= members; i++)
        {
            priorities[i] = samePriority ? (byte)100 : (byte)r.Next(90, 111);
        }

        int resend = 1 << r.Next(6, 10); // 64 .. 512 datagrams
        int window = Math.Max(16, resend >> r.Next(0, 3));
        var heal = TimeSpan.FromMilliseconds(r.Next(3000, 6001));
        var faults = new List<FaultEvent>();
        int count = r.Next(2, 9);
        for (int i = 0; i < count; i++)
        {
            var at = TimeSpan.FromMilliseconds(r.Next(500, (int)heal.TotalMilliseconds));
            var kind = PickKind(r);
            byte member = (byte)r.Next(1, members + 1);
            byte peer = (byte)(1 + ((member + r.Next(0, members - 1)) % members));
            bool targetsActive = kind is FaultKind.Crash or FaultKind.FastRestart or FaultKind.WrongKey or FaultKind.Isolate && r.NextDouble() < 0.4;
            double magnitude = kind switch
            {
                FaultKind.Degrade => r.NextDouble() * 0.5,
                FaultKind.ClockJump => (r.NextDouble() < 0.7 ? 1 : -1) * (0.5 + (r.NextDouble() * 40)),
                FaultKind.CutTransfers => 0.3 + (r.NextDouble() * 0.7),
                _ => 0,
            };
            var duration = kind switch
            {
                FaultKind.Crash => TimeSpan.FromMilliseconds(r.Next(50, 2500)),
                FaultKind.Isolate => TimeSpan.FromMilliseconds(r.Next(100, 4000)),
                FaultKind.OneWayCut => TimeSpan.FromMilliseconds(r.Next(100, 2000)),
                FaultKind.Degrade or FaultKind.CutTransfers => TimeSpan.FromMilliseconds(r.Next(200, 3000)),
                _ => TimeSpan.Zero,
            };
            faults.Add(new FaultEvent(at, kind, member, peer, magnitude, duration, targetsActive));
        }

        faults.Sort((a, b) => a.At.CompareTo(b.At));
        return new Scenario
        {
            Seed = seed,
            Members = members,
            Priorities = priorities,
            HealAt = heal,
            ResendBufferDatagrams = resend,
            SendWindowDatagrams = window,
            TombstoneTtl = TimeSpan.FromMilliseconds(r.Next(500, 3001)),
            ChurnPerSecond = r.Next(100, 1500),
            TargetLive = r.Next(20, 400),
            Faults = faults,
        };
    }

    private static FaultKind PickKind(Random r) => r.Next(0, 20) switch
    {
        < 4 => FaultKind.Degrade,
        < 7 => FaultKind.Isolate,
        < 8 => FaultKind.OneWayCut,
        < 12 => FaultKind.Crash,
        < 15 => FaultKind.FastRestart,
        < 16 => FaultKind.WrongKey,
        < 18 => FaultKind.ClockJump,
        _ => FaultKind.CutTransfers,
    };
}
