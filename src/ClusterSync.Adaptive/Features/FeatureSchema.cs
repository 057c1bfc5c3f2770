namespace ClusterSync.Adaptive.Features;

/// <summary>
/// The model's input: <see cref="Count"/> floats in the order of <see cref="Names"/>. <see cref="Version"/> changes
/// whenever a feature is added, removed, reordered or computed differently; a model trained for another version is
/// refused at load (training and runtime share <see cref="FeatureExtractor"/>, so the version is all that can drift).
/// </summary>
public static class FeatureSchema
{
    /// <summary>The feature-extraction version this build computes.</summary>
    public const int Version = 1;

    /// <summary>Name of the feature vector column in ML.NET models.</summary>
    public const string FeaturesColumn = "Features";

    /// <summary>Name of the label column in training data: ln(lifetime in seconds), lifetime floored at 1 ms.</summary>
    public const string LabelColumn = "Label";

    public const int Protocol = 0;
    public const int DestinationPort = 1;
    public const int SourcePort = 2;
    public const int LowPort = 3;
    public const int DestinationWellKnown = 4;
    public const int SourceWellKnown = 5;
    public const int SourceInternal = 6;
    public const int DestinationInternal = 7;
    public const int HourOfDay = 8;

    public const int Count = 9;

    /// <summary>Feature names by index (the model card lists them; a model's manifest must list the same).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "protocol", "dst_port", "src_port", "low_port", "dst_port_well_known", "src_port_well_known", "src_internal", "dst_internal", "hour_of_day",
    ];
}
