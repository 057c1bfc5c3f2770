using System.Globalization;
using System.Net;
using System.Text.Json;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>The plugin's settings (<c>dataPlane.settings</c>); <see cref="Parse"/> throws <see cref="ArgumentException"/> naming the setting.</summary>
internal sealed record ConntrackSettings
{
    public const string Names = "receiveBufferBytes, batchBytes, ack, expectedConnections, events, resyncSeconds, ignore, ignoreLoopback, ignoreSyncLinks, templates";

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

    /// <summary>Loopback, not announced by default (<see cref="IgnoreLoopback"/>): a loopback connection never crosses the firewall.</summary>
    public static readonly IReadOnlyList<IPNetwork> DefaultIgnore = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];

    /// <summary>
    /// Networks (<c>ignore</c>: a list of CIDRs) whose connections the source does not announce when the original
    /// source or destination falls in one (counted: <c>ignored</c>), as conntrackd's IgnoreAddress: the sync link's
    /// and the management addresses. They extend the loopback default (<see cref="IgnoreLoopback"/>), never replace it.
    /// </summary>
    public IReadOnlyList<IPNetwork> Ignore { get; init; } = [];

    /// <summary>Whether loopback (<see cref="DefaultIgnore"/>: 127.0.0.0/8, ::1/128) is ignored too (default true; false only for a lab whose test traffic is loopback).</summary>
    public bool IgnoreLoopback { get; init; } = true;

    /// <summary>
    /// Whether the node's own sync traffic is ignored (default true): connections with one of the node's sync-link
    /// endpoints (<c>DataPlaneContext.SyncLinkEndpoints</c>: this member's and its peers' delta and full sync endpoints)
    /// at either end of the original tuple. Matched by address, port and protocol, so other traffic of those
    /// addresses is still announced.
    /// </summary>
    public bool IgnoreSyncLinks { get; init; } = true;

    /// <summary>
    /// The kernel pickup of connection templates at a takeover (<c>templates</c>: docs/conntrack.md, "Connection
    /// templates"); null when the setting is absent: templates are then not installed into the kernel.
    /// </summary>
    public TemplatePickupSettings? Templates { get; init; }

    /// <summary><see cref="DefaultIgnore"/> (unless <see cref="IgnoreLoopback"/> is false), then <see cref="Ignore"/>.</summary>
    public IEnumerable<IPNetwork> IgnoredNetworks => IgnoreLoopback ? DefaultIgnore.Concat(Ignore) : Ignore;

    public static ConntrackSettings Parse(JsonElement? element)
    {
        var s = new ConntrackSettings();
        foreach (var p in PluginSettings.Properties(element, Names))
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
                case "ignore":
                    s = s with { Ignore = Networks(p) };
                    break;
                case "templates":
                    s = s with { Templates = TemplatePickupSettings.Parse(p.Value) };
                    break;
                case "ack" or "events" or "ignoreLoopback" or "ignoreSyncLinks" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    bool b = p.Value.GetBoolean();
                    s = p.Name switch
                    {
                        "ack" => s with { Ack = b },
                        "events" => s with { Events = b },
                        "ignoreSyncLinks" => s with { IgnoreSyncLinks = b },
                        _ => s with { IgnoreLoopback = b },
                    };
                    break;
                case "ack" or "events" or "ignoreLoopback" or "ignoreSyncLinks":
                    throw new ArgumentException($"{p.Name}: expected true or false, found {p.Value}");
                default:
                    throw new ArgumentException($"{p.Name}: unknown setting (expected {Names})");
            }
        }

        return s;
    }

    private static List<IPNetwork> Networks(JsonProperty p)
    {
        if (p.Value.ValueKind != JsonValueKind.Array)
        {
            throw new ArgumentException($"{p.Name}: expected a list of CIDRs such as [\"10.0.0.0/24\", \"fd00::/64\"], found {p.Value.ValueKind}");
        }

        var networks = new List<IPNetwork>();
        int i = 0;
        foreach (var item in p.Value.EnumerateArray())
        {
            string? text = item.ValueKind == JsonValueKind.String ? item.GetString() : null;
            // Strict: "10.0.0.1/24" (host bits set) is refused rather than silently read as 10.0.0.0/24.
            if (text is null || text.IndexOf('/', StringComparison.Ordinal) is not (> 0 and int slash) || !IPNetwork.TryParse(text, out var network)
                || !IPAddress.TryParse(text.AsSpan(0, slash), out var written) || !written.Equals(network.BaseAddress))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{p.Name}[{i}]: expected a CIDR such as 10.0.0.0/24 or fd00::/64 (address bits past the prefix zero), found {item}"));
            }

            networks.Add(network);
            i++;
        }

        return networks;
    }

    private static int Int(JsonProperty p, int min, int max)
        => p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int v) && v >= min && v <= max
            ? v
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{p.Name}: expected an integer {min}-{max}, found {p.Value}"));
}
