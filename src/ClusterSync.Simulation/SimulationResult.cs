namespace ClusterSync.Simulation;

/// <summary>Invariants the simulator checks (README.md, "Invariants").</summary>
internal static class Invariants
{
    /// <summary>A connection synchronized to every live Standby when the serving Active stopped was missing at the new one.</summary>
    public const string FailoverLoss = "failover-loss";
    /// <summary>A restarted member marked itself synchronized without a full sync while a synchronized peer was up.</summary>
    public const string JoinSkipped = "join-skipped";
    /// <summary>A Standby still differs from the Active a bound after the faults stopped (missing or stale entries).</summary>
    public const string Convergence = "convergence";
    /// <summary>A Standby holds a connection the Active does not (destroyed, or never had).</summary>
    public const string Ghost = "ghost";
    /// <summary>More than one Active (or none) after healing.</summary>
    public const string SingleActive = "single-active";
    /// <summary>The Active role moved after healing although nothing failed (preemption is off).</summary>
    public const string StableActive = "stable-active";
    /// <summary>
    /// With preemption off, a member became Active while another was Active, up and reachable over clean links, and the
    /// serving Active then stepped down for it (the split-brain rule handed the role to the newcomer).
    /// </summary>
    public const string Preempted = "preempted";
    /// <summary>A restarted member's epoch is not newer than its previous life's (its peers drop its packets as stale).</summary>
    public const string EpochRegression = "epoch-regression";
    /// <summary>
    /// The Active's send window stayed full with the slowest live peer's acknowledgements frozen for two dead intervals
    /// (checked all the time), or the window is full or changes stay queued a bound after healing.
    /// </summary>
    public const string WedgedWindow = "wedged-window";
    /// <summary>A member is not Standby or Active a bound after healing (stuck joining).</summary>
    public const string Liveness = "liveness";
    /// <summary>The simulator itself failed (an exception escaped the engine, a full sync hung).</summary>
    public const string SimulatorError = "simulator-error";
}

/// <summary>One broken invariant: which, when (simulated seconds) and what was seen.</summary>
public sealed record Violation(string Invariant, double AtSeconds, string Detail)
{
    public override string ToString() => $"[{AtSeconds:F3}s] {Invariant}: {Detail}";
}

/// <summary>The outcome of one seed.</summary>
public sealed record SimulationResult(int Seed, IReadOnlyList<Violation> Violations, SimulationStats Stats, IReadOnlyList<string> Schedule, IReadOnlyList<string>? Trace)
{
    public bool Passed => Violations.Count == 0;

    /// <summary>The first violation (by simulated time): what a failing seed is reported by.</summary>
    public Violation? First => Violations.Count == 0 ? null : Violations[0];
}

/// <summary>What happened in a run (for reports and to see that the faults really bit).</summary>
public sealed record SimulationStats(
    double SimulatedSeconds,
    long Events,
    long DatagramsSent,
    long DatagramsDropped,
    long ChangesSubmitted,
    int Crashes,
    int FullSyncs,
    int FullSyncsFailed,
    int Failovers,
    string Digest);
