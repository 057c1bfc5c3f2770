using ClusterSync.Classification;
using ClusterSync.Connections;

namespace ClusterSync.Plugins;

/// <summary>
/// The node's <c>policy.rules</c> resolved into one table per protocol (first matching rule wins; a classify call is
/// one or two array reads): the port/protocol classifier, and what the FTP plugin classifies every other connection
/// by. Compiled into each plugin that uses it (linked from plugins/Shared/).
/// </summary>
internal sealed class PortProtocolRules : IConnectionClassifier
{
    private readonly string?[]?[] _ports = new string?[]?[256];
    private readonly string?[] _protocolWide = new string?[256];

    public PortProtocolRules(string name, IReadOnlyList<ClassRule> rules)
    {
        Name = name;
        // Fill from the last rule to the first, so that the first matching rule is what remains.
        for (int i = rules.Count - 1; i >= 0; i--)
        {
            var rule = rules[i];
            int protocol = ClassRuleSyntax.ParseProtocol(rule.Protocol, i);
            for (int p = 0; p < 256; p++)
            {
                if (protocol >= 0 && protocol != p)
                {
                    continue;
                }

                if (rule.Ports is null)
                {
                    _protocolWide[p] = rule.Class;
                    if (_ports[p] is { } all)
                    {
                        Array.Fill(all, rule.Class);
                    }

                    continue;
                }

                if (protocol < 0 && p is not (6 or 17 or 132))
                {
                    continue; // ports only mean something for TCP, UDP and SCTP
                }

                var table = _ports[p] ??= Filled(_protocolWide[p]);
                foreach (var (lo, hi) in ClassRuleSyntax.ParsePorts(rule.Ports, i))
                {
                    Array.Fill(table, rule.Class, lo, hi - lo + 1);
                }
            }
        }
    }

    public string Name { get; }

    public string? Classify(in ConnectionKey connection)
    {
        var table = _ports[connection.Protocol];
        return table is not null ? table[connection.DestinationPort] : _protocolWide[connection.Protocol];
    }

    private static string?[] Filled(string? value)
    {
        var t = new string?[65536];
        Array.Fill(t, value);
        return t;
    }
}
