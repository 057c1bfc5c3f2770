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

    // Per protocol (0-255): null = no port rules; otherwise a 65536-entry table of class names.
    private readonly string?[]?[] _ports = new string?[]?[256];
    private readonly string?[] _protocolWide = new string?[256];
    private readonly string? _anyWide;

    public PortProtocolClassifier(IReadOnlyList<ClassRuleOptions> rules)
    {
        // Apply in reverse so that earlier rules overwrite later ones: first match wins.
        for (int i = rules.Count - 1; i >= 0; i--)
        {
            var rule = rules[i];
            int proto = ParseProtocol(rule.Protocol) ?? throw new ConfigurationException($"rules[{i}].protocol: unknown protocol '{rule.Protocol}'");
            if (rule.Ports is null)
            {
                if (proto == AnyProtocol)
                {
                    _anyWide = rule.Class;
                }
                else
                {
                    _protocolWide[proto] = rule.Class;
                }

                continue;
            }

            if (!TryParsePorts(rule.Ports, out var ranges, out var error))
            {
                throw new ConfigurationException($"rules[{i}].ports: {error}");
            }

            foreach (int p in proto == AnyProtocol ? [6, 17, 132] : new[] { proto })
            {
                var table = _ports[p] ??= new string?[65536];
                foreach (var (lo, hi) in ranges)
                {
                    Array.Fill(table, rule.Class, lo, hi - lo + 1);
                }
            }
        }
    }

    public string Name => ClassifierName;

    public string? Classify(in ConnectionKey connection)
    {
        byte p = connection.Protocol;
        var table = _ports[p];
        if (table is not null)
        {
            var c = table[connection.DestinationPort];
            if (c is not null)
            {
                return c;
            }
        }

        return _protocolWide[p] ?? _anyWide;
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
