using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin(ClusterSync.Plugins.PortProtocolClassifierFactory.PluginName, "1.0.0", PluginKind.Classifier)]

namespace ClusterSync.Plugins;

/// <summary>
/// The port/protocol rule classifier as a plugin (the node's default classifier): the node's <c>policy.rules</c>, first
/// matching rule wins; a connection no rule matches gets the default class.
/// </summary>
public sealed class PortProtocolClassifierFactory : IConnectionClassifierFactory
{
    /// <summary>The plugin's name.</summary>
    public const string PluginName = "port-protocol";

    /// <inheritdoc/>
    public string Name => PluginName;

    /// <inheritdoc/>
    public IConnectionClassifier Create(ClassifierContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new PortProtocolRules(context.Rules);
    }
}

/// <summary>Rules resolved into one table per protocol: a classify call is one or two array reads.</summary>
internal sealed class PortProtocolRules : IConnectionClassifier
{
    private readonly string?[]?[] _ports = new string?[]?[256];
    private readonly string?[] _protocolWide = new string?[256];

    public PortProtocolRules(IReadOnlyList<ClassRule> rules)
    {
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

    public string Name => PortProtocolClassifierFactory.PluginName;

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
