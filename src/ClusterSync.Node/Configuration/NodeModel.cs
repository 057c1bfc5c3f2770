using System.Net;
using ClusterSync.Engine;
using ClusterSync.Security;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The node model: a configuration that passed every section's validation, with what was derived from it, built once
/// by <see cref="NodeConfigLoader"/> and immutable: the key, control token and configured adaptive model (each file
/// loaded once, here), the endpoints, the plugin directory, the engine options and the plugins it names, resolved
/// (<see cref="Plugins"/>). <see cref="NodeHost"/> composes the node from it and reads no file validation could have checked.
/// </summary>
/// <remarks>
/// The resolved plugins hold what their factories created (a classifier, a data plane's source and sink): the host
/// built from this model owns and releases them; a caller that builds no host disposes the model.
/// </remarks>
public sealed record NodeModel(
    string Path,
    NodeConfig Config,
    ClusterKey? Key,
    MemberConfig Self,
    int SelfIndex,
    IPEndPoint LocalEndPoint,
    IReadOnlyList<MemberConfig> PeerMembers,
    IReadOnlyList<IPEndPoint> PeerEndPoints,
    SyncEngineOptions EngineOptions,
    uint GeneratorSourceBase) : IDisposable
{
    /// <summary>This member's full sync listen address (its sync IP, <c>fullSyncPort</c>).</summary>
    public required IPEndPoint FullSyncEndPoint { get; init; }

    /// <summary>The peers' full sync addresses, in peer order.</summary>
    public required IReadOnlyList<IPEndPoint> PeerFullSyncEndPoints { get; init; }

    public required Membership.ClusterMode Mode { get; init; }

    /// <summary>The file keeping this member's last epoch across restarts (in <c>node.stateDirectory</c>).</summary>
    public required string EpochFilePath { get; init; }

    /// <summary>The control endpoint's bearer token (<c>node.control.tokenFile</c>), or null when none is configured.</summary>
    public string? ControlToken { get; init; }

    /// <summary>The control endpoint's HTTPS certificate with its key (<c>node.control.certificateFile</c>), or null for plain HTTP.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? ControlCertificate { get; init; }

    /// <summary>The plugin directory (<c>plugins.directory</c> resolved against the configuration file, or the default).</summary>
    public required string PluginDirectory { get; init; }

    /// <summary>The configured model (<c>adaptive.model</c>), loaded by validation; null: adaptive mode off, cold start or the shipped model.</summary>
    public ConfiguredModel? AdaptiveModel { get; init; }

    /// <summary>Sync link ids in ascending order (one link, id 0, for a member configured with a single <c>address</c>).</summary>
    public IReadOnlyList<byte> LinkIds { get; init; } = [0];

    /// <summary>This member's UDP address on each link, in <see cref="LinkIds"/> order (empty: just <see cref="LocalEndPoint"/>).</summary>
    public IReadOnlyList<IPEndPoint> LocalLinkEndPoints { get; init; } = [];

    /// <summary>Per link (in <see cref="LinkIds"/> order), the peers' addresses in peer order (empty: just <see cref="PeerEndPoints"/>).</summary>
    public IReadOnlyList<IReadOnlyList<IPEndPoint>> PeerLinkEndPoints { get; init; } = [];

    /// <summary>
    /// The endpoints of this member's own sync traffic, handed to a data-plane plugin (<c>DataPlaneContext.SyncLinkEndpoints</c>):
    /// its own and its peers' delta-sync (UDP) endpoints on every link and full-sync (TCP) endpoints. Empty when a
    /// transport plugin carries the sync traffic (its flows go to the plugin's servers, which the node does not know).
    /// </summary>
    public IReadOnlyList<DataPlane.SyncLinkEndpoint> SyncLinkEndpoints { get; init; } = [];

    /// <summary>The plugins the configuration names (classifier, transport, data plane), found, checked and created by validation.</summary>
    public required ResolvedPlugins Plugins { get; init; }

    /// <summary>Releases the resolved plugins (the host does it when it was built from this model).</summary>
    public void Dispose()
    {
        Plugins.Dispose();
        ControlCertificate?.Dispose();
    }
}
