using System.Net;
using System.Text.Json;
using ClusterSync.Connections;

namespace ClusterSync.DataPlane;

/// <summary>
/// Where a member that becomes Active commits its replica: the data plane that will carry the connections
/// (the embedding application's table, the Linux kernel's conntrack table).
/// </summary>
public interface IReplicaSink
{
    /// <summary>The sink's name, for status output.</summary>
    string Name { get; }

    /// <summary>
    /// Installs <paramref name="replica"/> (live connections only) into the data plane. Called on failover, not on a hot path.
    /// </summary>
    /// <remarks>
    /// Order: every entry without a <see cref="ConnectionEntry.Master"/> comes first, then the related entries after their
    /// master — a stable order by depth (entries whose master has no master, then their own related entries, ...); an
    /// entry whose master is not in <paramref name="replica"/> counts as depth 1. Within a depth the order is the table's.
    /// A sink that must create a master before its related entries (the kernel refuses a related entry whose master it
    /// does not hold) can install in the order given.
    /// </remarks>
    void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica);
}

/// <summary>Receives connection events from a data-plane source (the engine's submit path).</summary>
public interface IConnectionEventSink
{
    /// <summary>Submits a batch of events; the span is only read during the call.</summary>
    void Submit(ReadOnlySpan<ConnectionEvent> changes);

    /// <summary>Changes waiting for the sender: a source may hold back while this is large (backpressure).</summary>
    int PendingCount { get; }
}

/// <summary>A source of connection events: kernel conntrack, a trace replay, an embedding application.</summary>
public interface IConnectionSource : IAsyncDisposable
{
    /// <summary>The source's name, for status output.</summary>
    string Name { get; }

    /// <summary>Feeds <paramref name="sink"/> until <paramref name="cancellationToken"/> is cancelled; runs on a thread of its own.</summary>
    Task RunAsync(IConnectionEventSink sink, CancellationToken cancellationToken);
}

/// <summary>What a data plane is created with.</summary>
/// <param name="MemberId">This member's id.</param>
/// <param name="Settings">The plugin's own settings (<c>plugins.settings.NAME</c>), or null.</param>
public sealed record DataPlaneContext(byte MemberId, JsonElement? Settings)
{
    /// <summary>
    /// The endpoints of the node's own sync traffic: this member's and its peers' delta-sync (UDP) and full-sync (TCP)
    /// endpoints on every sync link. Every flow the node itself opens on a sync link has one of them at one end of its
    /// original tuple. A data plane that sees the host's own connections (kernel conntrack) should not announce those:
    /// they are flows of this firewall, not through it. Empty when the node's sync traffic runs over a transport plugin.
    /// </summary>
    public IReadOnlyList<SyncLinkEndpoint> SyncLinkEndpoints { get; init; } = [];
}

/// <summary>One endpoint of the node's own sync traffic (<see cref="DataPlaneContext.SyncLinkEndpoints"/>).</summary>
/// <param name="Address">The IP address.</param>
/// <param name="Port">The UDP or TCP port.</param>
/// <param name="Protocol">The IP protocol: 17 (UDP, delta sync) or 6 (TCP, full sync).</param>
public readonly record struct SyncLinkEndpoint(IPAddress Address, ushort Port, byte Protocol);

/// <summary>The entry point of a data-plane plugin, selected by <see cref="Name"/>; created with its public parameterless constructor.</summary>
public interface IDataPlaneFactory
{
    /// <summary>The data plane's configuration name.</summary>
    string Name { get; }

    /// <summary>The source of connection events (null when the data plane only receives replicas).</summary>
    IConnectionSource? CreateSource(DataPlaneContext context);

    /// <summary>The sink a member commits its replica into on failover.</summary>
    IReplicaSink CreateSink(DataPlaneContext context);
}
