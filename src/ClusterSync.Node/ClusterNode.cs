using ClusterSync.Node.Configuration;
using ClusterSync.Node.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node;

/// <summary>
/// One ClusterSync member hosted inside another application: the same node as <c>clustersync node --config FILE</c>
/// (the same configuration file, validation, composition and runtime), started and stopped by the embedding
/// application instead of by a console lifetime (no signal handlers are installed).
/// </summary>
/// <example>
/// <code>
/// await using var node = ClusterNode.FromConfigFile("/etc/clustersync/node.json", logging => logging.AddConsole());
/// await node.StartAsync(cancellationToken);
/// // ... node.State, node.ControlEndpoint ...
/// await node.StopAsync(cancellationToken);
/// </code>
/// </example>
public sealed class ClusterNode : IAsyncDisposable
{
    private readonly NodeHost _host;
    private int _disposed;

    private ClusterNode(NodeHost host) => _host = host;

    /// <summary>The member id of this node (<c>node.memberId</c>).</summary>
    public int MemberId => _host.Model.Self.Id;

    /// <summary>The local control endpoint (<c>http://127.0.0.1:PORT</c>: /status, /metrics, /healthz), or null when <c>node.control.port</c> is 0.</summary>
    public Uri? ControlEndpoint => _host.Model.Config.Node.Control.Port is var port and not 0 ? new Uri($"http://127.0.0.1:{port}") : null;

    /// <summary>The member state (<c>Down</c>, <c>Syncing</c>, <c>Standby</c>, <c>Active</c>, ...), or null before <see cref="StartAsync"/>.</summary>
    public string? State => _host.Runtime.Membership?.State.ToString();

    /// <summary>
    /// Reads and validates <paramref name="configPath"/> (every error at once) and composes the node; nothing is
    /// started and no port is bound but the sync socket; this life's epoch is recorded in <c>node.stateDirectory</c>.
    /// Throws <see cref="ConfigurationException"/> naming the file and fields (also for a damaged epoch file), or
    /// <see cref="NodeStartException"/> when the sync socket cannot be bound or the epoch file cannot be written.
    /// </summary>
    /// <param name="configPath">The node configuration file (JSON, as for <c>clustersync node --config</c>).</param>
    /// <param name="configureLogging">Logging providers and filters of the embedding application; none: the node does not log.</param>
    /// <param name="time">The node's clock (default: the system clock; tests pass a fake one).</param>
    public static ClusterNode FromConfigFile(string configPath, Action<ILoggingBuilder>? configureLogging = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        var loaded = NodeConfigLoader.Load(Path.GetFullPath(configPath));
        return new ClusterNode(NodeHost.Build(loaded, builder =>
        {
            builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
            configureLogging?.Invoke(builder.Logging);
        }, time));
    }

    /// <summary>Starts the engine, the runtime (membership, full sync, data plane) and the control endpoint; throws <see cref="NodeStartException"/> when a port cannot be bound.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default) => _host.Host.StartAsync(cancellationToken);

    /// <summary>Stops the node as SIGTERM stops <c>clustersync node</c>: the control endpoint, the runtime, then the engine.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _host.Host.StopAsync(cancellationToken);

    /// <summary>Stops the node if it runs, and releases its sockets.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _host.Host.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The embedding application owns the process: no console signal handling, start and stop on request.</summary>
    private sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
