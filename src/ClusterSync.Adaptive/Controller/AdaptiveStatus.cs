namespace ClusterSync.Adaptive.Controller;

/// <summary>What one service class looks like to the feedback loop right now.</summary>
public sealed record AdaptiveClassStatus(
    string Name,
    bool NeverSkip,
    double CheckpointSeconds,
    long Outcomes,
    double LifetimeP50Seconds,
    double LifetimeP90Seconds,
    double LifetimeP99Seconds,
    double ObservedLongShare,
    double PredictedLongShare,
    double Drift,
    bool DriftFlagged);

/// <summary>A copy of the controller's live state (status, metrics, tests).</summary>
public sealed record AdaptiveStatus(
    string Mode,
    string? Model,
    string? ModelPath,
    DateTimeOffset? ModelLoadedAt,
    long ModelReloads,
    long ModelReloadsRefused,
    string? LastReloadError,
    double LossBudget,
    double RealizedLoss,
    double Price,
    long DecidedNow,
    long DecidedDelayed,
    long DecidedNever,
    long DecidedStatic,
    long DecidedNeverSkip,
    long RevisedNow,
    long RevisedHeld,
    long OutcomesObserved,
    long OutcomesDropped,
    long DriftHints,
    IReadOnlyList<AdaptiveClassStatus> Classes,
    double RealizedLossSinceStart,
    double NeverSyncClassShare,
    long LiveConnections,
    long DecidedGuarded,
    AdaptiveComparison Comparison);

/// <summary>
/// Adaptive as applied vs the static policy on the same ended connections (per class: its own delay, or the
/// checkpoint — 3 s by default — for classes that are not <c>delayed</c>): messages are 2 per synchronized connection
/// (new + destroy), exposure Σ min(lifetime, delay) in seconds.
/// </summary>
public sealed record BaselineWindow(long Connections, long AdaptiveMessages, double AdaptiveExposureSeconds, long StaticMessages, double StaticExposureSeconds)
{
    public static readonly BaselineWindow Empty = new(0, 0, 0, 0, 0);

    /// <summary>Adaptive messages / static messages (NaN when static sent none).</summary>
    public double MessagesRatio => StaticMessages > 0 ? (double)AdaptiveMessages / StaticMessages : double.NaN;

    /// <summary>Adaptive exposure / static exposure (NaN when static exposed nothing).</summary>
    public double ExposureRatio => StaticExposureSeconds > 0 ? AdaptiveExposureSeconds / StaticExposureSeconds : double.NaN;

    /// <summary>Worse than static on both axes at once.</summary>
    public bool WorseOnBoth => AdaptiveMessages > StaticMessages && AdaptiveExposureSeconds > StaticExposureSeconds;

    public BaselineWindow Plus(BaselineWindow o)
        => new(Connections + o.Connections, AdaptiveMessages + o.AdaptiveMessages, AdaptiveExposureSeconds + o.AdaptiveExposureSeconds,
            StaticMessages + o.StaticMessages, StaticExposureSeconds + o.StaticExposureSeconds);
}

/// <summary>One class's running comparison; <see cref="RegionsGuarded"/>: model regions (grid delays) falling back to the static delay now.</summary>
public sealed record AdaptiveClassComparison(string Class, double StaticDelaySeconds, int RegionsGuarded, BaselineWindow SinceStart, BaselineWindow LastHour);

/// <summary>The running comparison with the static policy: all classes the policy acts on together, and per class.</summary>
public sealed record AdaptiveComparison(BaselineWindow SinceStart, BaselineWindow LastHour, IReadOnlyList<AdaptiveClassComparison> Classes);
