namespace ClusterSync.Telemetry;

/// <summary>Telemetry capture (the node's <c>telemetry</c> section). Immutable; validated as a whole.</summary>
public sealed record TelemetryOptions
{
    public bool Enabled { get; init; }

    /// <summary>The LiteDB file; relative paths are resolved against the configuration file's directory by the node.</summary>
    public string Path { get; init; } = "telemetry.db";

    /// <summary>Share of connections whose lifecycle record is written (by a hash of the key, so a sample is stable). 1: all.</summary>
    public double SampleRate { get; init; } = 1.0;

    /// <summary>Retention: when the file grows past this, the oldest lifecycle segments are deleted (freed pages are reused).</summary>
    public long MaxSizeMegabytes { get; init; } = 1024;

    /// <summary>How often sync metrics (messages/bytes per class, exposure, NACKs, lag) are written.</summary>
    public TimeSpan MetricsInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the writer drains captured records into the file (one segment per drain, at most <see cref="SegmentRecords"/>).</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    public int SegmentRecords { get; init; } = 8192;

    /// <summary>Records the capture ring holds between drains; when it is full, records are dropped and counted.</summary>
    public int QueueCapacity { get; init; } = 1 << 18;

    public IEnumerable<string> Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Path))
        {
            yield return $"{path}.path: expected a file name for the telemetry database";
        }

        if (!(SampleRate > 0 && SampleRate <= 1))
        {
            yield return $"{path}.sampleRate: expected a share in (0, 1], found {SampleRate}";
        }

        if (MaxSizeMegabytes is < 1 or > 1_000_000)
        {
            yield return $"{path}.maxSizeMegabytes: expected 1 to 1000000, found {MaxSizeMegabytes}";
        }

        if (MetricsInterval < TimeSpan.FromMilliseconds(100) || MetricsInterval > TimeSpan.FromHours(1))
        {
            yield return $"{path}.metricsInterval: expected a duration in [100ms, 1h], found {MetricsInterval}";
        }

        if (FlushInterval < TimeSpan.FromMilliseconds(10) || FlushInterval > TimeSpan.FromMinutes(1))
        {
            yield return $"{path}.flushInterval: expected a duration in [10ms, 1m], found {FlushInterval}";
        }

        if (SegmentRecords is < 1 or > 65536)
        {
            yield return $"{path}.segmentRecords: expected 1 to 65536, found {SegmentRecords}";
        }

        if (QueueCapacity is < 1024 or > 1 << 24)
        {
            yield return $"{path}.queueCapacity: expected 1024 to 16777216, found {QueueCapacity}";
        }
    }
}
