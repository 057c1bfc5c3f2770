using System.Globalization;
using ClusterSync.Classification;
using ClusterSync.Connections;

namespace ClusterSync.Policy;

/// <summary>
/// The built-in classifier: first matching port/protocol rule wins. Lookups are one array index for
/// TCP/UDP/SCTP ports and one per-protocol slot otherwise.
/// </summary>
internal sealed class PortProtocolClassifier : IConnectionClassifier
{
    public const string ClassifierName = "port-protocol";
    private const int AnyProtocol = -1;

    // Per protocol (0-255): null when no rule of that protocol names ports; otherwise the resolved class of every
    // destination port (protocol-wide and any-protocol rules folded in, in rule order).
    private readonly string?[]?[] _ports = new string?[]?[256];
    // Per protocol: the first rule without ports that applies (used when the protocol has no port table).
    private readonly string?[] _protocolWide = new string?[256];

    public PortProtocolClassifier(IReadOnlyList<ClassRuleOptions> rules)
    {
        var parsed = new List<(int Protocol, List<(int Low, int High)>? Ranges, string Class)>(rules.Count);
        for (int i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            int proto = ParseProtocol(rule.Protocol) ?? throw ConfigurationErrors.At($"rules[{i}].protocol", $"unknown protocol '{rule.Protocol}'");
            List<(int Low, int High)>? ranges = null;
            if (rule.Ports is not null && !PortProtocolClassifier.TryParsePorts(rule.Ports, out ranges, out var error))
            {
                throw ConfigurationErrors.At($"rules[{i}].ports", error);
            }

            parsed.Add((proto, ranges, rule.Class));
        }

        static bool Applies(int ruleProtocol, int protocol) => ruleProtocol == AnyProtocol || ruleProtocol == protocol;

        for (int p = 0; p < 256; p++)
        {
            bool hasPortRule = parsed.Exists(r => r.Ranges is not null && (r.Protocol == p || (r.Protocol == AnyProtocol && p is 6 or 17 or 132)));
            if (!hasPortRule)
            {
                _protocolWide[p] = parsed.Find(r => r.Ranges is null && Applies(r.Protocol, p)).Class;
                continue;
            }

            // Fill from the last rule to the first, so that the first matching rule is what remains.
            var table = _ports[p] = new string?[65536];
            for (int i = parsed.Count - 1; i >= 0; i--)
            {
                var (proto, ranges, cls) = parsed[i];
                if (!Applies(proto, p))
                {
                    continue;
                }

                if (ranges is null)
                {
                    Array.Fill(table, cls);
                    continue;
                }

                foreach (var (lo, hi) in ranges)
                {
                    Array.Fill(table, cls, lo, hi - lo + 1);
                }
            }
        }
    }

    public string Name => ClassifierName;

    public string? Classify(in ConnectionKey connection)
    {
        byte p = connection.Protocol;
        var table = _ports[p];
        return table is not null ? table[connection.DestinationPort] : _protocolWide[p];
    }

    public static int? ParseProtocol(string? text) => text?.ToLowerInvariant() switch
    {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        "sctp" => 132,
        "any" or "*" => AnyProtocol,
        _ when byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var b) => b,
        _ => null,
    };

    public static bool TryParsePorts(string text, out List<(int Low, int High)> ranges, out string error)
    {
        ranges = [];
        error = "";
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = raw.IndexOf('-', StringComparison.Ordinal);
            var loText = dash < 0 ? raw : raw[..dash];
            var hiText = dash < 0 ? raw : raw[(dash + 1)..];
            if (!ushort.TryParse(loText, NumberStyles.None, CultureInfo.InvariantCulture, out var lo)
                || !ushort.TryParse(hiText, NumberStyles.None, CultureInfo.InvariantCulture, out var hi) || hi < lo)
            {
                error = $"expected ports like '80,443,8000-8080' (0-65535), found '{raw}'";
                return false;
            }

            ranges.Add((lo, hi));
        }

        if (ranges.Count == 0)
        {
            error = "expected at least one port or range";
            return false;
        }

        return true;
    }
}
