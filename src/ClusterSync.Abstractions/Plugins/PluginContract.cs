namespace ClusterSync.Plugins;

/// <summary>The version of the plugin contracts in this assembly. A host loads only plugins built for the same version.</summary>
public static class PluginContract
{
    /// <summary>
    /// The contract version: raised whenever a contract in ClusterSync.Abstractions changes incompatibly (a member
    /// added to an interface, a changed signature). A plugin records the version it was compiled against through
    /// <see cref="ClusterSyncPluginAttribute"/>.
    /// </summary>
    /// <remarks>Version 2: <see cref="Connections.ConnectionEntry"/> carries <c>Mark</c> and <c>Master</c> (its size and
    /// layout changed) and <see cref="DataPlane.IReplicaSink.Commit"/> receives masters before their related entries.</remarks>
    public const int Version = 2;
}

/// <summary>What a plugin provides.</summary>
public enum PluginKind
{
    /// <summary>A connection classifier (<see cref="Classification.IConnectionClassifierFactory"/>).</summary>
    Classifier = 1,
    /// <summary>A sync transport (<see cref="Transport.ISyncTransportFactory"/>).</summary>
    Transport = 2,
    /// <summary>A data plane: a source of connection events and a replica sink (<see cref="DataPlane.IDataPlaneFactory"/>).</summary>
    DataPlane = 3,
    /// <summary>
    /// A protocol plugin: a classifier whose classifier also implements <see cref="Classification.IRelatedConnectionResolver"/>
    /// (control connections and their related connections, synchronized as a unit).
    /// </summary>
    Protocol = 4,
}

/// <summary>
/// The manifest of a plugin assembly: <c>[assembly: ClusterSyncPlugin("ftp", "1.2.0", PluginKind.Protocol)]</c>.
/// The contract version defaults to <see cref="PluginContract.Version"/> of the ClusterSync.Abstractions the plugin
/// was compiled against (an optional argument's value is compiled into the plugin), so a plugin built against another
/// contract version is refused with that reason.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
public sealed class ClusterSyncPluginAttribute : Attribute
{
    /// <summary>Declares a plugin.</summary>
    /// <param name="name">The plugin's name: what a node's configuration selects it by (lower case, no spaces).</param>
    /// <param name="version">The plugin's own version (semantic version text, for example <c>1.0.0</c>).</param>
    /// <param name="kind">What the plugin provides.</param>
    /// <param name="contractVersion">The contract version it was built for; leave it to its default.</param>
    public ClusterSyncPluginAttribute(string name, string version, PluginKind kind, int contractVersion = PluginContract.Version)
    {
        Name = name;
        Version = version;
        Kind = kind;
        ContractVersion = contractVersion;
    }

    /// <summary>The plugin's name.</summary>
    public string Name { get; }

    /// <summary>The plugin's own version.</summary>
    public string Version { get; }

    /// <summary>What the plugin provides.</summary>
    public PluginKind Kind { get; }

    /// <summary>The contract version the plugin was compiled against.</summary>
    public int ContractVersion { get; }
}
