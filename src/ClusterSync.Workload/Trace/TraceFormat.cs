namespace ClusterSync.Workload.Trace;

/// <summary>Input formats that load into trace records.</summary>
public enum TraceFormat
{
    /// <summary>The trace CSV (docs/trace-format.md).</summary>
    Trace,
    /// <summary>LUFlow CSV, zip or a directory of them.</summary>
    Luflow,
    /// <summary>Zeek conn.log.</summary>
    Zeek,
}

/// <summary>Loads a trace in any <see cref="TraceFormat"/>, sorted by start time.</summary>
public static class TraceLoader
{
    public static TraceFormat ParseFormat(string? text) => text?.ToLowerInvariant() switch
    {
        null or "" or "trace" => TraceFormat.Trace,
        "luflow" => TraceFormat.Luflow,
        "zeek" => TraceFormat.Zeek,
        _ => throw ConfigurationErrors.At("--format", $"expected trace, luflow or zeek, found '{text}'"),
    };

    public static List<TraceRecord> Load(string path, TraceFormat format)
    {
        var list = format switch
        {
            TraceFormat.Luflow => LuflowImporter.Read(path),
            TraceFormat.Zeek => ZeekConnLogImporter.Read(path),
            _ => TraceCsv.Read(path),
        };
        if (format == TraceFormat.Trace)
        {
            list.Sort(static (x, y) => x.StartUnixSeconds.CompareTo(y.StartUnixSeconds));
        }

        return list;
    }
}
