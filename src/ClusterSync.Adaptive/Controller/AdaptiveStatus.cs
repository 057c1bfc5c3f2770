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
    IReadOnlyList<AdaptiveClassStatus> Classes);
