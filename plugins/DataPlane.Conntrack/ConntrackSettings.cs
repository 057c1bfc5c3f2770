using System.Globalization;
using System.Text.Json;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>The plugin's settings (<c>dataPlane.settings</c>); <see cref="Parse"/> throws <see cref="ArgumentException"/> naming the setting.</summary>
internal sealed record ConntrackSettings
{
    public const string Names = "receiveBufferBytes, batchBytes, ack, expectedConnections, events, resyncSeconds";

    /// <summary>SO_RCVBUFFORCE of the event socket: events queue here while the reader is busy (default 16 MiB).</summary>
    public int ReceiveBufferBytes { get; init; } = 16 << 20;

    /// <summary>CT_NEW messages packed into one send of a commit (default 256 KiB).</summary>
    public int BatchBytes { get; init; } = 256 << 10;

    /// <summary>NLM_F_ACK on every committed message (default false: only errors come back, twice as fast).</summary>
    public bool Ack { get; init; }

    /// <summary>Connections the source expects to track (its table's initial capacity; default 65,536).</summary>
    public int ExpectedConnections { get; init; } = 65_536;

    /// <summary>Whether the source runs (default true); false makes the plugin a replica sink only.</summary>
    public bool Events { get; init; } = true;

    /// <summary>A reconciling dump every this many seconds (default 0: only after an overrun).</summary>
    public int ResyncSeconds { get; init; }

    public static ConntrackSettings Parse(JsonElement? element)
    {
        var s = new ConntrackSettings();
        if (element is not { } e || e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return s;
        }

        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"expected an object of settings ({Names}), found {e.ValueKind}");
        }

        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "receiveBufferBytes":
                    s = s with { ReceiveBufferBytes = Int(p, 4096, 1 << 30) };
                    break;
                case "batchBytes":
                    s = s with { BatchBytes = Int(p, 4096, 16 << 20) };
                    break;
                case "resyncSeconds":
                    s = s with { ResyncSeconds = Int(p, 0, 86_400) };
                    break;
                case "expectedConnections":
                    s = s with { ExpectedConnections = Int(p, 0, 50_000_000) };
                    break;
                case "ack" or "events" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    s = p.Name == "ack" ? s with { Ack = p.Value.GetBoolean() } : s with { Events = p.Value.GetBoolean() };
                    break;
                case "ack" or "events":
                    throw new ArgumentException($"{p.Name}: expected true or false, found {p.Value}");
                default:
                    throw new ArgumentException($"{p.Name}: unknown setting (expected {Names})");
            }
        }

        return s;
    }

    private static int Int(JsonProperty p, int min, int max)
        => p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int v) && v >= min && v <= max
            ? v
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{p.Name}: expected an integer {min}-{max}, found {p.Value}"));
}
