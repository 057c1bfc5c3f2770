using System.Globalization;
using System.Text.Json;
using ClusterSync.DataPlane;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin(ClusterSync.Plugins.TraceReplayFactory.PluginName, "1.0.0", PluginKind.DataPlane)]

namespace ClusterSync.Plugins;

/// <summary>
/// The trace-replay data plane: its source replays a connection trace CSV (docs/trace-format.md) into the node in time
/// order at a speed factor; its sink keeps the replica committed on failover and reports how many connections it holds.
/// </summary>
/// <remarks>
/// Settings (<c>dataPlane.settings</c>): <c>trace</c> (the trace CSV; absolute, or relative to the working directory;
/// without it the data plane only receives replicas), <c>speed</c> (trace seconds per wall-clock second, default 1),
/// <c>updates</c> (an update half-way through each connection's life, default true), <c>drain</c> (also play the
/// destroys after the trace's last start, leaving the table empty; default false: the connections still open at the
/// trace's last start stay live).
/// </remarks>
public sealed class TraceReplayFactory : IDataPlaneFactory
{
    /// <summary>The plugin's name.</summary>
    public const string PluginName = "trace-replay";

    /// <inheritdoc/>
    public string Name => PluginName;

    /// <inheritdoc/>
    public IConnectionSource? CreateSource(DataPlaneContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = TraceReplaySettings.Parse(context.Settings);
        return settings.Trace is null ? null : new TraceReplaySource(settings);
    }

    /// <inheritdoc/>
    public IReplicaSink CreateSink(DataPlaneContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _ = TraceReplaySettings.Parse(context.Settings);
        return new TraceReplaySink();
    }
}

/// <summary>The plugin's settings; <see cref="Parse"/> throws <see cref="ArgumentException"/> naming the setting.</summary>
internal sealed record TraceReplaySettings
{
    public string? Trace { get; init; }

    public double Speed { get; init; } = 1;

    public bool Updates { get; init; } = true;

    public bool Drain { get; init; }

    public static TraceReplaySettings Parse(JsonElement? element)
    {
        var s = new TraceReplaySettings();
        foreach (var p in PluginSettings.Properties(element, "trace, speed, updates, drain"))
        {
            switch (p.Name)
            {
                case "trace" when p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { Length: > 0 } path:
                    s = s with { Trace = Path.GetFullPath(path) };
                    if (!File.Exists(s.Trace))
                    {
                        throw new ArgumentException($"trace: no such file '{s.Trace}'");
                    }

                    break;
                case "trace":
                    throw new ArgumentException($"trace: expected the path of a trace CSV, found {p.Value}");
                case "speed" when p.Value.ValueKind == JsonValueKind.Number && p.Value.GetDouble() is > 0 and <= 1e9 and var speed:
                    s = s with { Speed = speed };
                    break;
                case "speed":
                    throw new ArgumentException($"speed: expected a factor in (0, 1e9] (trace seconds per second), found {p.Value}");
                case "updates" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    s = s with { Updates = p.Value.GetBoolean() };
                    break;
                case "drain" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    s = s with { Drain = p.Value.GetBoolean() };
                    break;
                case "updates" or "drain":
                    throw new ArgumentException($"{p.Name}: expected true or false, found {p.Value}");
                default:
                    throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{p.Name}: unknown setting (expected trace, speed, updates, drain)"));
            }
        }

        return s;
    }
}
