using ClusterSync.Classification;
using ClusterSync.DataPlane;
using ClusterSync.Node.Plugins;
using ClusterSync.Transport;

namespace ClusterSync.Node.Configuration;

/// <summary>The classifier plugin in use at start: its name and version, and the classifier its factory created from its settings.</summary>
public sealed record ResolvedClassifier(string Name, string Version, IConnectionClassifier Classifier);

/// <summary>The data-plane plugin (<c>dataPlane.source: plugin</c>): its name and version, and the source and sink its factory created.</summary>
public sealed record ResolvedDataPlane(string Name, string? Version, IConnectionSource? Source, IReplicaSink Sink);

/// <summary>
/// The plugins a node configuration names, resolved once by validation (<see cref="PluginResolver"/>): the catalog of
/// the plugin directory, the classifier created by its factory, the transport factory, the data plane's source and
/// sink. Owns the catalog and what the factories created: the host built from the model releases them.
/// </summary>
public sealed class ResolvedPlugins : IDisposable
{
    private int _disposed;

    internal ResolvedPlugins(PluginCatalog catalog, ResolvedClassifier? classifier, string? classifierUnavailable, ISyncTransportFactory? transport, ResolvedDataPlane? dataPlane)
        => (Catalog, Classifier, ClassifierUnavailable, Transport, DataPlane) = (catalog, classifier, classifierUnavailable, transport, dataPlane);

    public PluginCatalog Catalog { get; }

    /// <summary>The classifier plugin, or null: the engine's built-in rules (<c>plugins.classifier: built-in</c>, or the default plugin not deployed).</summary>
    public ResolvedClassifier? Classifier { get; }

    /// <summary>Why the default classifier plugin (no <c>plugins.classifier</c> set) is not used, or null.</summary>
    public string? ClassifierUnavailable { get; }

    /// <summary>The transport plugin (<c>cluster.transport</c> other than <c>udp</c>), or null.</summary>
    public ISyncTransportFactory? Transport { get; }

    /// <summary>The data-plane plugin (<c>dataPlane.source: plugin</c>), or null.</summary>
    public ResolvedDataPlane? DataPlane { get; private set; }

    /// <summary>Hands the data plane's source and sink to their new owner (the host's <see cref="NodeDataPlane"/>).</summary>
    internal ResolvedDataPlane? TakeDataPlane()
    {
        var dataPlane = DataPlane;
        DataPlane = null;
        return dataPlane;
    }

    /// <summary>Releases the data plane's source (when no host took it) and unloads the plugins.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (TakeDataPlane()?.Source is { } source)
        {
            PluginResolver.DisposeQuietly(source);
        }

        Catalog.Dispose();
    }
}
