using ClusterSync.DataPlane;
using ClusterSync.Plugins;
using ClusterSync.Plugins.Conntrack;

[assembly: ClusterSyncPlugin(ConntrackFactory.PluginName, "1.0.0", PluginKind.DataPlane)]

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// The Linux kernel conntrack data plane (docs/conntrack.md): its source announces the kernel's connections (events
/// plus dumps over ctnetlink), its sink commits a replica into the kernel on failover. It acts on the network namespace
/// of the thread that creates it. Needs Linux and CAP_NET_ADMIN: <see cref="CreateSource"/> and <see cref="CreateSink"/>
/// open their netlink sockets at once and throw <see cref="ConntrackAccessException"/> (an
/// <see cref="UnauthorizedAccessException"/>) without the capability, <see cref="ConntrackUnavailableException"/>
/// when ctnetlink is not there, <see cref="ArgumentException"/> for a bad setting.
/// </summary>
/// <remarks>
/// Settings (<c>dataPlane.settings</c>): <c>receiveBufferBytes</c> (event socket buffer, default 16 MiB),
/// <c>batchBytes</c> (commit batch, default 256 KiB), <c>ack</c> (an ACK per committed entry, default false),
/// <c>expectedConnections</c> (default 65,536), <c>events</c> (default true; false: a replica sink only),
/// <c>resyncSeconds</c>, <c>ignore</c> (CIDRs never announced, extending the loopback default) and
/// <c>ignoreLoopback</c> (default true), <c>ignoreSyncLinks</c> (default true: the node's own sync traffic, from
/// <see cref="DataPlaneContext.SyncLinkEndpoints"/>, is not announced).
/// </remarks>
public sealed class ConntrackFactory : IDataPlaneFactory
{
    /// <summary>The plugin's name.</summary>
    public const string PluginName = "conntrack";

    private readonly CommitRegistry _registry = new();

    /// <inheritdoc/>
    public string Name => PluginName;

    /// <inheritdoc/>
    public IConnectionSource? CreateSource(DataPlaneContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = ConntrackSettings.Parse(context.Settings);
        EnsureLinux();
        return settings.Events
            ? new ConntrackSource(settings, _registry, syncLinks: settings.IgnoreSyncLinks ? context.SyncLinkEndpoints : null)
            : null;
    }

    /// <inheritdoc/>
    public IReplicaSink CreateSink(DataPlaneContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = ConntrackSettings.Parse(context.Settings);
        EnsureLinux();
        return new ConntrackSink(settings, _registry);
    }

    private static void EnsureLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new ConntrackUnavailableException("conntrack data plane: needs Linux (netfilter conntrack over netlink)");
        }
    }
}
