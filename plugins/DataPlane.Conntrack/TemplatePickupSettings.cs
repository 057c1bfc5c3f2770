using System.Text.Json;
using System.Text.RegularExpressions;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// <c>templates</c> in the plugin's settings: where and for how long the kernel picks up connections of a template's
/// shape after a takeover (docs/conntrack.md, "Connection templates"). <see cref="Parse"/> throws
/// <see cref="ArgumentException"/> naming the setting.
/// </summary>
internal sealed partial record TemplatePickupSettings
{
    public const string Names = "chain, pickupWindowSeconds, tcpLoose";

    /// <summary>The nftables family of the table the firewall's forward policy lives in: <c>ip</c>, <c>ip6</c> or <c>inet</c>.</summary>
    public string Family { get; init; } = "inet";

    /// <summary>That table's name.</summary>
    public string Table { get; init; } = "";

    /// <summary>The base chain of the forward policy: the pickup's jump rule goes first in it for the window.</summary>
    public string Chain { get; init; } = "";

    /// <summary>How long after a takeover a packet of a template's shape may create state (default 30 s, 1-3600).</summary>
    public int PickupWindowSeconds { get; init; } = 30;

    /// <summary>
    /// Whether the window raises <c>net.netfilter.nf_conntrack_tcp_loose</c> to 1 when it is 0 (and restores it at its
    /// end): without it the kernel creates no state for a mid-stream TCP packet at all (default true).
    /// </summary>
    public bool TcpLoose { get; init; } = true;

    public static TemplatePickupSettings Parse(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"templates: expected an object ({Names}), found {element.ValueKind}");
        }

        var s = new TemplatePickupSettings();
        bool chain = false;
        foreach (var p in element.EnumerateObject())
        {
            switch (p.Name)
            {
                case "chain":
                    var m = p.Value.ValueKind == JsonValueKind.String ? ChainName().Match(p.Value.GetString()!) : null;
                    if (m is not { Success: true })
                    {
                        throw new ArgumentException($"templates.chain: expected \"FAMILY TABLE CHAIN\" of the forward policy, such as \"inet filter forward\" (family ip, ip6 or inet; names of letters, digits, _ and -), found {p.Value}");
                    }

                    s = s with { Family = m.Groups[1].Value, Table = m.Groups[2].Value, Chain = m.Groups[3].Value };
                    chain = true;
                    break;
                case "pickupWindowSeconds":
                    s = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int w) && w is >= 1 and <= 3600
                        ? s with { PickupWindowSeconds = w }
                        : throw new ArgumentException($"templates.pickupWindowSeconds: expected an integer 1-3600, found {p.Value}");
                    break;
                case "tcpLoose" when p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    s = s with { TcpLoose = p.Value.GetBoolean() };
                    break;
                case "tcpLoose":
                    throw new ArgumentException($"templates.tcpLoose: expected true or false, found {p.Value}");
                default:
                    throw new ArgumentException($"templates.{p.Name}: unknown setting (expected {Names})");
            }
        }

        return chain ? s : throw new ArgumentException("templates.chain: required: the forward policy's chain as \"FAMILY TABLE CHAIN\", such as \"inet filter forward\" (a plugin cannot overrule another chain's drop)");
    }

    [GeneratedRegex(@"^(ip|ip6|inet) ([A-Za-z_][A-Za-z0-9_-]{0,63}) ([A-Za-z_][A-Za-z0-9_-]{0,63})$")]
    private static partial Regex ChainName();
}
