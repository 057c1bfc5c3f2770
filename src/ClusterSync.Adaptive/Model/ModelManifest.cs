using System.Text.Json.Serialization;

namespace ClusterSync.Adaptive.Model;

/// <summary>
/// The <c>clustersync/manifest.json</c> entry inside a model zip, next to ML.NET's own entries: what the model
/// expects (format, feature version and names) and the calibration that turns its score into lifetime
/// probabilities (one <see cref="LifetimeBucket"/> per score range).
/// </summary>
public sealed record ModelManifest
{
    public const string EntryName = "clustersync/manifest.json";
    public const string CurrentFormat = "clustersync-lifetime/1";

    [JsonPropertyName("format")]
    public string Format { get; init; } = "";

    [JsonPropertyName("featureVersion")]
    public int FeatureVersion { get; init; }

    [JsonPropertyName("features")]
    public IReadOnlyList<string> Features { get; init; } = [];

    /// <summary>Seconds of <see cref="LifetimeModel.DelayGrid"/> the bucket statistics are given at (∞ written as -1).</summary>
    [JsonPropertyName("delayGrid")]
    public IReadOnlyList<double> DelayGrid { get; init; } = [];

    /// <summary>Buckets by ascending score: <see cref="LifetimeBucket.UpperScore"/> of the last one is +∞ (written as null).</summary>
    [JsonPropertyName("buckets")]
    public IReadOnlyList<LifetimeBucket> Buckets { get; init; } = [];

    [JsonPropertyName("name")]
    public string Name { get; init; } = "";

    [JsonPropertyName("trainer")]
    public string Trainer { get; init; } = "";

    [JsonPropertyName("trainedAtUtc")]
    public string TrainedAtUtc { get; init; } = "";

    [JsonPropertyName("trainingData")]
    public string TrainingData { get; init; } = "";
}

/// <summary>
/// Observed lifetimes (on calibration data) of the connections whose score fell in one range: per delay of the
/// grid the share still alive at that delay and the mean of min(lifetime, delay) — the exposure that delay costs.
/// </summary>
public sealed record LifetimeBucket
{
    /// <summary>Scores up to this value (inclusive) fall in this bucket; null for the last bucket.</summary>
    [JsonPropertyName("upperScore")]
    public double? UpperScore { get; init; }

    [JsonPropertyName("count")]
    public long Count { get; init; }

    /// <summary>P(lifetime &gt; delay) for each delay of the grid (0 at ∞).</summary>
    [JsonPropertyName("survival")]
    public IReadOnlyList<double> Survival { get; init; } = [];

    /// <summary>E[min(lifetime, delay)] in seconds for each delay of the grid (the mean lifetime at ∞).</summary>
    [JsonPropertyName("exposure")]
    public IReadOnlyList<double> Exposure { get; init; } = [];
}

[JsonSerializable(typeof(ModelManifest))]
[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
public sealed partial class ModelManifestJson : JsonSerializerContext;
