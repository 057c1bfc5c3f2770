using System.CommandLine;
using System.Net.Sockets;
using ClusterSync.Engine;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Control;
using ClusterSync.Node.Plugins;
using ClusterSync.Node.Runtime;
using ClusterSync.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync node --config FILE</c>: one member under the Generic Host. The configuration is validated as a whole
/// before anything starts (exit 2 with every error); the engine and the control endpoint are hosted services,
/// stopped cleanly on SIGTERM or Ctrl-C.
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The node configuration file (JSON; see README, Configuration).", Required = true };
        var command = new Command("node", "Run one member of a cluster.") { config };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config)!.FullName, cancellationToken));
        return command;
    }

    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken) => await RunAsync(configPath, null, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs the node of <paramref name="configPath"/>, its settings first overridden by <paramref name="adjust"/> (<c>clustersync replay</c>).</summary>
    public static async Task<int> RunAsync(string configPath, Func<NodeConfig, NodeConfig>? adjust, CancellationToken cancellationToken)
    {
        // Throws ConfigurationException with every error (exit 2) before anything is bound or started.
        var loaded = NodeConfigLoader.Load(configPath, adjust);

        IDatagramChannel channel;
        IStreamChannel? streams = null;
        PluginCatalog? catalog = null;
        NodeDataPlane? dataPlane = null;
        if (loaded.Config.DataPlane.Source == DataPlaneConfig.SourcePlugin)
        {
            // A data-plane plugin: found by name; not loaded, or its factory refuses its settings: exit 2 naming the field.
            var plugins = loaded.Config.Plugins;
            var dp = loaded.Config.DataPlane;
            catalog = PluginCatalog.Load(plugins.ResolveDirectory(loaded.Path), plugins.HotReload, plugins.Disabled, null);
            try
            {
                dataPlane = NodeDataPlane.Create(catalog, dp.Plugin!, (byte)loaded.Self.Id,
                    dp.Settings ?? (plugins.Settings.TryGetValue(dp.Plugin!, out var s) ? s : null), loaded.Path, null);
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
            catalog ??= PluginCatalog.Load(plugins.ResolveDirectory(loaded.Path), plugins.HotReload, plugins.Disabled, null);
            try
            {
                (channel, streams) = OpenPluginTransport(loaded, catalog);
            }
            catch
            {
                catalog.Dispose();
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
                if (ex.Error == SocketError.AddressNotAvailable)
                {
                    throw new ConfigurationException($"{loaded.Path}: {ex.Field}: {ex.EndPoint} is not an address of this machine (node.memberId {loaded.Self.Id} must be this machine's member)");
                }

                await Console.Error.WriteLineAsync($"clustersync: {loaded.Path}: {ex.Message}").ConfigureAwait(false);
                return CommandLine.Failure;
            }
        }

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "clustersync" });
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(loaded);
        builder.Services.AddSingleton(sp => new SyncEngine(loaded.EngineOptions, channel, loaded.Key, TimeProvider.System,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("ClusterSync.Engine")));
        builder.Services.AddSingleton(sp => new NodePlugins(loaded.Config.Plugins, loaded.Path, sp.GetRequiredService<SyncEngine>(), sp.GetRequiredService<ILoggerFactory>(), catalog));
        builder.Services.AddSingleton(sp => new NodeRuntime(loaded, sp.GetRequiredService<SyncEngine>(), sp.GetRequiredService<ILogger<NodeRuntime>>(), sp.GetRequiredService<ILoggerFactory>())
        {
            Plugins = sp.GetRequiredService<NodePlugins>(),
            FullSyncStreams = streams,
            DataPlanePlugin = dataPlane is null ? null : dataPlane.WithLogger(sp.GetRequiredService<ILoggerFactory>()),
        });
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NodeRuntime>());
        if (loaded.Config.Node.Control.Port != 0)
        {
            builder.Services.AddSingleton<ControlEndpoint>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ControlEndpoint>());
        }

        using var host = builder.Build();
        try
        {
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NodeStartException ex)
        {
            await Console.Error.WriteLineAsync($"clustersync: {ex.Message}").ConfigureAwait(false);
            return CommandLine.Failure;
        }
        finally
        {
            channel.Dispose();
        }

        return CommandLine.Success;
    }

    /// <summary>
    /// Opens the configured transport plugin's channels: the datagram channel for delta sync and the control channel, and
    /// its stream channel for full sync when it offers one. A transport that is not loaded, or that refuses its addresses,
    /// is bad configuration (exit 2); one that cannot reach its infrastructure is a failure of the job (exit 1).
    /// </summary>
    private static (IDatagramChannel Channel, IStreamChannel? Streams) OpenPluginTransport(LoadedNodeConfig loaded, PluginCatalog catalog)
    {
        var name = loaded.Config.Cluster.Transport;
        if (!catalog.TryGetTransport(name, out var factory, out _))
        {
            var found = catalog.Find(name);
            throw new ConfigurationException($"{loaded.Path}: cluster.transport: no loaded transport plugin named '{name}' in {catalog.Directory}"
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
            throw new ConfigurationException($"{loaded.Path}: cluster.transport '{name}': {ex.Message}");
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
