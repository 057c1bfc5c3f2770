using System.Net;
using System.Net.Sockets;
using ClusterSync.DataPlane;
using ClusterSync.Engine;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Control;
using ClusterSync.Node.Plugins;
using ClusterSync.Node.Runtime;
using ClusterSync.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node;

/// <summary>
/// The composition root of one member: from a validated configuration, the transport (UDP sync links or a transport
/// plugin), the plugin catalog, the data-plane plugin, the engine, the runtime and the control endpoint, as hosted
/// services of one Generic Host. <c>clustersync node</c> and <see cref="ClusterNode"/> both build their node here.
/// Disposing stops nothing: stop the host first; disposing releases the host and the sync channel.
/// </summary>
public sealed class NodeHost : IAsyncDisposable
{
    private readonly IDatagramChannel _channel;

    private NodeHost(IHost host, IDatagramChannel channel, LoadedNodeConfig config)
    {
        Host = host;
        _channel = channel;
        Config = config;
    }

    public IHost Host { get; }

    public LoadedNodeConfig Config { get; }

    public NodeRuntime Runtime => Host.Services.GetRequiredService<NodeRuntime>();

    /// <summary>
    /// Builds the node of <paramref name="loaded"/>; <paramref name="configure"/> adds logging and lifetime settings
    /// of the caller. Throws <see cref="ConfigurationException"/> for what the configuration got wrong but only the
    /// machine can tell (a plugin missing, an address not of this machine, a damaged epoch file), <see cref="NodeStartException"/> when a
    /// socket cannot be bound or the epoch file (<c>node.stateDirectory</c>) cannot be written.
    /// </summary>
    /// <param name="time">The node's clock, handed to every part that keeps time (default: the system clock; tests pass a fake one).</param>
    public static NodeHost Build(LoadedNodeConfig loaded, Action<HostApplicationBuilder>? configure = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System; // the node's only default clock

        // This life's epoch, newer than every earlier life's even if the wall clock stepped back, recorded before anything
        // is bound or sent (a damaged epoch file: ConfigurationException, exit 2; an unwritable one: NodeStartException).
        var (epoch, previousEpoch) = EpochFile.Claim(loaded.EpochFilePath, loaded.Self.Id, time.GetUtcNow().ToUnixTimeMilliseconds());
        var engineOptions = loaded.EngineOptions with { Epoch = epoch, PreviousEpoch = previousEpoch };
        IDatagramChannel channel;
        IStreamChannel? streams = null;
        PluginCatalog? catalog = null;
        NodeDataPlane? dataPlane = null;
        if (loaded.Config.DataPlane.Source == DataPlaneConfig.SourcePlugin)
        {
            // A data-plane plugin: found by name; not loaded, or its factory refuses its settings: exit 2 naming the field.
            var plugins = loaded.Config.Plugins;
            var dp = loaded.Config.DataPlane;
            catalog = PluginCatalog.Load(loaded.PluginDirectory, plugins.HotReload, plugins.Disabled, null);
            try
            {
                dataPlane = NodeDataPlane.Create(catalog, dp.Plugin!, (byte)loaded.Self.Id,
                    dp.Settings ?? (plugins.Settings.TryGetValue(dp.Plugin!, out var s) ? s : null), loaded.Path, null,
                    TimeSpan.FromSeconds(dp.CommitTimeoutSeconds), time, SyncLinkEndpoints(loaded));
            }
            catch
            {
                catalog.Dispose();
                throw;
            }
        }

        if (loaded.Config.Cluster.Transport != ClusterConfig.TransportUdp)
        {
            // A plugin transport: found by name in the plugin directory. No silent swap to UDP when it is missing or fails.
            var plugins = loaded.Config.Plugins;
            catalog ??= PluginCatalog.Load(loaded.PluginDirectory, plugins.HotReload, plugins.Disabled, null);
            try
            {
                (channel, streams) = OpenPluginTransport(loaded, catalog);
            }
            catch
            {
                catalog.Dispose();
                dataPlane?.Dispose();
                throw;
            }
        }
        else
        {
            try
            {
                channel = SyncLinkChannels.Open(loaded);
            }
            catch (SyncBindException ex)
            {
                catalog?.Dispose();
                dataPlane?.Dispose();
                if (ex.Error == SocketError.AddressNotAvailable)
                {
                    throw ConfigurationErrors.At(loaded.Path, ex.Field, $"{ex.EndPoint} is not an address of this machine (node.memberId {loaded.Self.Id} must be this machine's member)");
                }

                throw new NodeStartException($"{loaded.Path}: {ex.Message}", ex);
            }
        }

        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "clustersync" });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(loaded);
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(sp => new SyncEngine(engineOptions, channel, loaded.Key, time,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("ClusterSync.Engine")));
        builder.Services.AddSingleton(sp => new NodePlugins(loaded.Config.Plugins, loaded.Path, sp.GetRequiredService<SyncEngine>(), sp.GetRequiredService<ILoggerFactory>(), catalog));
        builder.Services.AddSingleton(sp => new NodeRuntime(loaded, sp.GetRequiredService<SyncEngine>(), time, sp.GetRequiredService<ILogger<NodeRuntime>>(), sp.GetRequiredService<ILoggerFactory>())
        {
            Plugins = sp.GetRequiredService<NodePlugins>(),
            FullSyncStreams = streams,
            DataPlanePlugin = dataPlane?.WithLogger(sp.GetRequiredService<ILoggerFactory>()),
        });
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeRuntime>());
        if (loaded.Config.Node.Control.Port != 0)
        {
            builder.Services.AddSingleton<ControlEndpoint>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ControlEndpoint>());
        }

        configure?.Invoke(builder);
        return new NodeHost(builder.Build(), channel, loaded);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Host is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                Host.Dispose();
            }
        }
        finally
        {
            _channel.Dispose();
        }
    }

    /// <summary>
    /// Opens the configured transport plugin's channels: the datagram channel for delta sync and the control channel, and
    /// its stream channel for full sync when it offers one. A transport that is not loaded, or that refuses its addresses,
    /// is bad configuration (exit 2); one that cannot reach its infrastructure is a failure of the job (exit 1).
    /// </summary>
    /// <summary>
    /// The endpoints of this member's own sync traffic, handed to a data-plane plugin (<c>DataPlaneContext.SyncLinkEndpoints</c>):
    /// its own and its peers' delta-sync (UDP) endpoints on every link and full-sync (TCP) endpoints. Empty when a
    /// transport plugin carries the sync traffic (its flows go to the plugin's servers, which the node does not know).
    /// </summary>
    internal static IReadOnlyList<SyncLinkEndpoint> SyncLinkEndpoints(LoadedNodeConfig loaded)
    {
        if (loaded.Config.Cluster.Transport != ClusterConfig.TransportUdp)
        {
            return [];
        }

        var udp = new List<IPEndPoint> { loaded.LocalEndPoint };
        udp.AddRange(loaded.PeerEndPoints);
        udp.AddRange(loaded.LocalLinkEndPoints);
        foreach (var links in loaded.PeerLinkEndPoints)
        {
            udp.AddRange(links);
        }

        var tcp = new List<IPEndPoint> { loaded.FullSyncEndPoint };
        tcp.AddRange(loaded.PeerFullSyncEndPoints);
        return [.. udp.Select(e => new SyncLinkEndpoint(e.Address, (ushort)e.Port, 17))
            .Concat(tcp.Select(e => new SyncLinkEndpoint(e.Address, (ushort)e.Port, 6)))
            .Distinct()];
    }

    private static (IDatagramChannel Channel, IStreamChannel? Streams) OpenPluginTransport(LoadedNodeConfig loaded, PluginCatalog catalog)
    {
        var name = loaded.Config.Cluster.Transport;
        if (!catalog.TryGetTransport(name, out var factory, out _))
        {
            var found = catalog.Find(name);
            throw ConfigurationErrors.At(loaded.Path, "cluster.transport", $"no loaded transport plugin named '{name}' in {catalog.Directory}"
                + (found is null ? "" : $" ({found.Status}: {found.Reason})"));
        }

        var endpoints = new TransportEndpoints(loaded.Self.TransportAddress!, [.. loaded.PeerMembers.Select(m => m.TransportAddress!)]);
        IDatagramChannel channel;
        try
        {
            channel = factory.CreateDatagramChannel(endpoints, loaded.EngineOptions.Mtu);
        }
        catch (ArgumentException ex)
        {
            throw ConfigurationErrors.At(loaded.Path, "cluster.transport", $"the transport plugin '{name}' refused the members' transport addresses: {ex.Message}");
        }

        try
        {
            return (channel, factory is IStreamTransportFactory streams ? streams.CreateStreamChannel(endpoints) : null);
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }
}
