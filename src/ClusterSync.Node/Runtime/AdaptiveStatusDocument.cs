namespace ClusterSync.Node.Runtime;

/// <summary>Connections at risk now: owned, live, not yet replicated (what a failover this instant would lose).</summary>
public sealed record ExposureDocument
{
    public int Connections { get; init; }

    /// <summary>Their summed age: seconds alive but not replicated so far.</summary>
    public double ExposureSeconds { get; init; }
}

/// <summary>The adaptive controller as <c>/status</c> shows it (null when adaptive mode is off).</summary>
public sealed record AdaptiveDocument
{
    /// <summary><c>model</c> or <c>cold-start</c>.</summary>
    public string Mode { get; init; } = "";

    public string? Model { get; init; }

    public string? ModelPath { get; init; }

    public DateTimeOffset? ModelLoadedAt { get; init; }

    /// <summary><c>shipped</c> (the model next to the binary, used when <c>adaptive.model</c> is not set) or <c>configured</c>.</summary>
    public string? ModelSource { get; init; }

    /// <summary>The model's version: when it was trained (its manifest; the model card beside the zip says on what).</summary>
    public string? ModelTrainedAt { get; init; }

    /// <summary>Why there is no model although none was configured (e.g. the shipped file is missing).</summary>
    public string? ColdStartReason { get; init; }

    public long ModelReloads { get; init; }

    public long ModelReloadsRefused { get; init; }

    public string? LastReloadError { get; init; }

    public double LossBudget { get; init; }

    /// <summary>Realized Σ exposure / Σ lifetime (null before the first feedback batch).</summary>
    public double? RealizedLoss { get; init; }

    /// <summary>Exposure seconds one synchronized connection is worth (what the feedback loop moves).</summary>
    public double Price { get; init; }

    public IReadOnlyDictionary<string, long> Decisions { get; init; } = new Dictionary<string, long>();

    public long OutcomesObserved { get; init; }

    public long DriftHints { get; init; }

    public IReadOnlyList<AdaptiveClassDocument> Classes { get; init; } = [];

    /// <summary>Exposure-seconds / connection-seconds since start on the classes the policy acts on, live connections included.</summary>
    public double? RealizedLossSinceStart { get; init; }

    /// <summary>The operator's never-sync classes' share of all connection-seconds (outside the budget).</summary>
    public double? NeverSyncClassShare { get; init; }

    /// <summary>Adaptive as applied vs each class's static policy on the same ended connections (the operator's "does it pay here?").</summary>
    public AdaptiveComparisonDocument? Comparison { get; init; }
}

/// <summary>Messages (2 per synced connection) and exposure seconds: adaptive as applied vs the static policy, on the same ended connections.</summary>
public sealed record BaselineWindowDocument
{
    public long Connections { get; init; }

    public long AdaptiveMessages { get; init; }

    public double AdaptiveExposureSeconds { get; init; }

    public long StaticMessages { get; init; }

    public double StaticExposureSeconds { get; init; }

    public double? MessagesRatio { get; init; }

    public double? ExposureRatio { get; init; }

    public bool WorseOnBoth { get; init; }
}

public sealed record AdaptiveClassComparisonDocument
{
    public string Class { get; init; } = "";

    public double StaticDelaySeconds { get; init; }

    /// <summary>Model regions (grid delays) falling back to the static delay now (16: the whole class).</summary>
    public int RegionsGuarded { get; init; }

    public BaselineWindowDocument SinceStart { get; init; } = new();

    public BaselineWindowDocument LastHour { get; init; } = new();
}

public sealed record AdaptiveComparisonDocument
{
    public BaselineWindowDocument SinceStart { get; init; } = new();

    public BaselineWindowDocument LastHour { get; init; } = new();

    public IReadOnlyList<AdaptiveClassComparisonDocument> Classes { get; init; } = [];
}

public sealed record AdaptiveClassDocument
{
    public string Name { get; init; } = "";

    public bool NeverSkip { get; init; }

    public double CheckpointSeconds { get; init; }

    public long Outcomes { get; init; }

    public double? LifetimeP50Seconds { get; init; }

    public double? LifetimeP90Seconds { get; init; }

    public double? LifetimeP99Seconds { get; init; }

    public double? ObservedLongShare { get; init; }

    public double? PredictedLongShare { get; init; }

    public double? Drift { get; init; }

    public bool DriftFlagged { get; init; }
}

/// <summary>Telemetry capture as <c>/status</c> shows it (null when off).</summary>
public sealed record TelemetryDocument
{
    public string Path { get; init; } = "";

    public long Ended { get; init; }

    public long Written { get; init; }

    public long Dropped { get; init; }

    public long Segments { get; init; }

    public long SegmentsDeleted { get; init; }

    public long WriteFailures { get; init; }
}
