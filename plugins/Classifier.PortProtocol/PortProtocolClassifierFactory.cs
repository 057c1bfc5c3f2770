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
        return new PortProtocolRules(PluginName, context.Rules);
    }
}
