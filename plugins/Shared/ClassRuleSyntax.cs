using System.Globalization;

namespace ClusterSync.Plugins;

/// <summary>
/// The syntax of a <c>policy.rules</c> entry (ClassRule) for the classifier plugins that read the rules themselves. Plugins
/// share no assembly but the contract, so this file is compiled into each of them (linked from plugins/Shared/).
/// Throws <see cref="ArgumentException"/> naming the rule and the field.
/// </summary>
internal static class ClassRuleSyntax
{
    /// <summary>A protocol name (tcp, udp, icmp, icmpv6, sctp) or number; -1 for <c>any</c> or <c>*</c>.</summary>
    public static int ParseProtocol(string text, int rule) => text.ToLowerInvariant() switch
    {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        "sctp" => 132,
        "any" or "*" => -1,
        _ when byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var b) => b,
        _ => throw new ArgumentException($"rules[{rule}].protocol: unknown protocol '{text}'"),
    };

    /// <summary>Port ranges like <c>80,443,8000-8080</c>.</summary>
    public static IEnumerable<(int Low, int High)> ParsePorts(string text, int rule)
    {
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var dash = raw.IndexOf('-', StringComparison.Ordinal);
            if (!ushort.TryParse(dash < 0 ? raw : raw[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var lo)
                || !ushort.TryParse(dash < 0 ? raw : raw[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var hi) || hi < lo)
            {
                throw new ArgumentException($"rules[{rule}].ports: expected ports like '80,443,8000-8080', found '{raw}'");
            }

            yield return (lo, hi);
        }
    }
}
