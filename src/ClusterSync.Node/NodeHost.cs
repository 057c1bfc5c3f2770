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

namespace ClusterSync.Node;

/// <summary>
/// The composition root of one member: builds every part of the node from its validated model (<see cref="NodeModel"/>)
/// with one clock: the transport (UDP sync links or the transport plugin), the engine, the classifier binding, adaptive
/// mode, the data-plane plugin, the runtime and the control endpoint, hosted by one Generic Host (which only starts and
/// stops them). <c>clustersync node</c> and <see cref="ClusterNode"/> both build their node here. Disposing stops
/// nothing: stop the host first; disposing releases the host, the sync channel and the model's plugins.
/// </summary>
public sealed class NodeHost : IAsyncDisposable
{
    private readonly IDatagramChannel _channel;

    private NodeHost(IHost host, IDatagramChannel channel, NodeModel model, NodeRuntime runtime)
        => (Host, _channel, Model, Runtime) = (host, channel, model, runtime);

    public IHost Host { get; }

    public NodeModel Model { get; }

    public NodeRuntime Runtime { get; }

    /// <summary>
    /// Builds the node of <paramref name="model"/> (and owns the model's plugins from now on, also when it throws);
    /// <paramref name="configure"/> adds logging and lifetime settings of the caller. Configuration errors were all
    /// reported by validation; what only the machine can refuse throws <see cref="NodeStartException"/> (a socket that
    /// cannot be bound, an address not of this machine, an epoch file that cannot be written) or, for a damaged epoch or
    /// telemetry file or transport addresses the transport plugin refuses, <see cref="ConfigurationException"/> naming it.
    /// </summary>
    /// <param name="time">The node's clock, handed to every part that keeps time (default: the system clock; tests pass a fake one).</param>
    public static NodeHost Build(NodeModel model, Action<HostApplicationBuilder>? configure = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System; // the node's only default clock
        IDatagramChannel? channel = null;
        IStreamChannel? streams = null;
        try
        {
            // This life's epoch, newer than every earlier life's even if the wall clock stepped back, recorded before anything
            // is bound or sent (a damaged epoch file: ConfigurationException, exit 2; an unwritable one: NodeStartException).
            var (epoch, previousEpoch) = EpochFile.Claim(model.EpochFilePath, model.Self.Id, time.GetUtcNow().ToUnixTimeMilliseconds());
            (channel, streams) = OpenTransport(model);

            // The host only runs what is composed below: its services hand out these instances (built after the host,
            // whose logging the caller configures).
            NodeRuntime? runtime = null;
            ControlEndpoint? control = null;
            var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "clustersync" });
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
            builder.Services.AddHostedService(_ => runtime!);
            if (model.Config.Node.Control.Port != 0)
            {
                builder.Services.AddHostedService(_ => control!);
            }

            // Under a service manager (NOTIFY_SOCKET): READY=1 at Standby or Active, STATUS=, WATCHDOG=1 (after the runtime).
            ServiceManagerNotifier? notifier = null;
            if (ServiceManagerNotifier.Listening)
            {
                builder.Services.AddHostedService(_ => notifier!);
            }

            configure?.Invoke(builder);
            var host = builder.Build();
            var loggers = host.Services.GetRequiredService<ILoggerFactory>();
            var engine = new SyncEngine(model.EngineOptions with { Epoch = epoch, PreviousEpoch = previousEpoch }, channel, model.Key, time,
                loggers.CreateLogger("ClusterSync.Engine"));
            NodePlugins? plugins = null;
            try
            {
                plugins = new NodePlugins(model.Plugins, model.Config.Plugins, engine, loggers);
                var adaptive = AdaptiveNode.Create(model, engine, loggers, time);
                var dataPlane = model.Plugins.TakeDataPlane() is { } dp
                    ? NodeDataPlane.Compose(dp.Name, dp.Version, dp.Source, dp.Sink, TimeSpan.FromSeconds(model.Config.DataPlane.CommitTimeoutSeconds), time, loggers)
                    : null;
                var generator = model.Config.DataPlane.Source == DataPlaneConfig.SourceGenerator
                    ? new GeneratorDriver(model.Config.DataPlane.Generator, model.GeneratorSourceBase, model.Mode, engine, loggers.CreateLogger<NodeRuntime>())
                    : null;
                runtime = new NodeRuntime(model, engine, plugins, adaptive, dataPlane, generator, streams, time, loggers);
                control = model.Config.Node.Control.Port != 0 ? new ControlEndpoint(runtime, loggers.CreateLogger<ControlEndpoint>(), time) : null;
                notifier = ServiceManagerNotifier.Listening ? ServiceManagerNotifier.Create(runtime, time, loggers.CreateLogger<ServiceManagerNotifier>()) : null;
                return new NodeHost(host, channel, model, runtime);
            }
            catch
            {
                plugins?.Dispose();
                engine.Dispose();
                host.Dispose();
                throw;
            }
        }
        catch
        {
            (streams as IDisposable)?.Dispose();
            channel?.Dispose();
            model.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Runtime.Dispose();
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
            Model.Dispose();
        }
    }

    /// <summary>
    /// Opens the delta-sync channel (the UDP sync links, or the transport plugin's datagram channel) and, with a transport
    /// plugin that offers one, its stream channel for full sync (else null: TCP on <c>fullSyncPort</c>).
    /// </summary>
    private static (IDatagramChannel Channel, IStreamChannel? Streams) OpenTransport(NodeModel model)
    {
        if (model.Plugins.Transport is not { } factory)
        {
            try
            {
                return (SyncLinkChannels.Open(model), null);
            }
            catch (SyncBindException ex)
            {
                throw new NodeStartException(ex.Error == SocketError.AddressNotAvailable
                    ? $"{model.Path}: {ex.Field}: {ex.EndPoint} is not an address of this machine (node.memberId {model.Self.Id} must be this machine's member)"
                    : $"{model.Path}: {ex.Message}", ex);
            }
        }

        var endpoints = new TransportEndpoints(model.Self.TransportAddress!, [.. model.PeerMembers.Select(m => m.TransportAddress!)]);
        IDatagramChannel channel;
        try
        {
            channel = factory.CreateDatagramChannel(endpoints, model.EngineOptions.Mtu);
        }
        catch (ArgumentException ex)
        {
            // The transport contract has no call that checks addresses without connecting: its refusal comes here.
            throw ConfigurationErrors.At(model.Path, "cluster.transport", $"the transport plugin '{factory.Name}' refused the members' transport addresses: {ex.Message}");
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
