using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Control.Http;
using ClusterSync.Node.Runtime;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Control;

/// <summary>
/// The control endpoint on 127.0.0.1 or <c>node.control.address</c> (<c>node.control.port</c>): <c>GET /status</c> (JSON),
/// <c>/metrics</c> (Prometheus text) and <c>/healthz</c> (200 while the engine runs, 503 otherwise), served by
/// <see cref="ControlHttpServer"/> (a small HTTP/1.1 server on a TcpListener; no ASP.NET host). A route is one
/// line in <see cref="Routes"/>.
/// </summary>
public sealed partial class ControlEndpoint : IHostedService, IAsyncDisposable, IDisposable
{
    public static readonly JsonSerializerOptions StatusJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly NodeRuntime _node;
    private readonly NodeMetrics _metrics;
    private readonly ILogger<ControlEndpoint> _logger;
    private readonly TimeProvider _time;
    private ControlHttpServer? _server;

    public ControlEndpoint(NodeRuntime node, ILogger<ControlEndpoint> logger, TimeProvider time)
    {
        _node = node;
        _time = time;
        _metrics = new NodeMetrics(node);
        _logger = logger;
    }

    public int Port => _node.Model.Config.Node.Control.Port;

    /// <summary>Path → handler. Add a route here (one line).</summary>
    private Dictionary<string, ControlHandler> Routes()
    {
        var routes = new Dictionary<string, ControlHandler>(StringComparer.Ordinal)
        {
            ["/status"] = _ => Json(_node.GetStatus()),
            ["/metrics"] = MetricsAsync,
            ["/healthz"] = _ => Health(),
            ["/readyz"] = _ => Ready(),
        };
        foreach (var (path, handler) in FailoverRoutes.Routes(_node))
        {
            routes.Add(path, handler);
        }

        return routes;
    }

    /// <summary>Routes that look at the method or query (<see cref="ClusterRoutes"/>: generator pause/resume, ownership).</summary>
    private ValueTask<ControlResponse?> RequestRoutes(ControlRequest request, CancellationToken cancellationToken)
        => request.Path.StartsWith("/admin/", StringComparison.Ordinal)
            ? AdminRoutes.TryHandleAsync(_node, request.Method, request.Path, request.Query, _time, _logger)
            : ValueTask.FromResult(ClusterRoutes.TryHandle(_node, request.Method, request.Path, request.Query));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var control = _node.Model.Config.Node.Control;
        var address = ControlAddressValidator.TryParse(control.Address, out var a) ? a : IPAddress.Loopback; // validated by the loader
        var options = new ControlHttpOptions
        {
            Access = new ControlAccess(_node.Model.ControlToken, control.RequireTokenForReads, control.AllowUnauthenticated, address, NetworkHosts(address)),
            Certificate = _node.Model.ControlCertificate,
        };
        var endpoint = new IPEndPoint(address, Port);
        var server = new ControlHttpServer(endpoint, Routes(), _time, options, _logger, RequestRoutes);
        try
        {
            server.Start();
        }
        catch (SocketException ex)
        {
            throw new NodeStartException(ex.SocketErrorCode == SocketError.AddressNotAvailable
                ? $"{_node.Model.Path}: node.control.address: {address} is not an address of this machine"
                : $"{_node.Model.Path}: node.control.port: cannot listen on {endpoint}: {ex.Message}");
        }

        _server = server;
        Log.Listening(_logger, $"{(options.Certificate is null ? "http" : "https")}://{endpoint}");
        if (_node.Model.ControlToken is null && !control.AllowUnauthenticated)
        {
            Log.NoToken(_logger);
        }
        else if (control.AllowUnauthenticated)
        {
            Log.Unauthenticated(_logger);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private static ValueTask<ControlResponse> Json<T>(T document)
        => ValueTask.FromResult(new ControlResponse(200, ControlResponse.JsonContent, JsonSerializer.SerializeToUtf8Bytes(document, StatusJson)));

    private async ValueTask<ControlResponse> MetricsAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await _metrics.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        return new ControlResponse(200, NodeMetrics.ContentType, buffer.ToArray());
    }

    private ValueTask<ControlResponse> Health()
    {
        var engine = _node.Engine;
        string? problem = !engine.IsRunning ? engine.Failure ?? "the engine is not running"
            : engine.TransportFailure
            ?? engine.ReplicationLagFailure
            ?? (_node.DataPlanePlugin?.Failure is { } failure ? $"data-plane plugin '{_node.DataPlanePlugin.Name}': {failure}" : null);
        return ValueTask.FromResult(problem is null
            ? ControlResponse.Text(200, "ok\n")
            : ControlResponse.Text(503, $"unhealthy: {problem}\n"));
    }

    /// <summary>
    /// Readiness: 200 <c>serving</c> when this member is Active and its data-plane plugin (if any) finished committing
    /// the replica; 503 otherwise. Hooks that move traffic (a virtual address, a route) wait for it after a failover.
    /// </summary>
    private ValueTask<ControlResponse> Ready()
    {
        string? state = _node.Membership?.State.ToString();
        string? reason = state != "Active" ? $"member is {state ?? "starting"}"
            : _node.Membership is { Serving: false } ? "member is handing the Active role over (admin down or failover)"
            : _node.DataPlanePlugin is { Committing: true } plugin ? $"data-plane plugin '{plugin.Name}' is committing the replica"
            : null;
        return ValueTask.FromResult(reason is null
            ? ControlResponse.Text(200, "serving\n")
            : ControlResponse.Text(503, $"not serving: {reason}\n"));
    }

    /// <summary>
    /// Host names a client on the network may use for a non-loopback endpoint, besides the bind address: the machine's
    /// host name and, on a wildcard address (0.0.0.0, ::), every address of its interfaces. Every request on such an
    /// endpoint must present the token anyway (validation), so this only keeps the DNS-rebinding check meaningful.
    /// </summary>
    private static IReadOnlyCollection<string> NetworkHosts(IPAddress address)
    {
        if (IPAddress.IsLoopback(address))
        {
            return [];
        }

        var hosts = new List<string> { Dns.GetHostName() };
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
        {
            try
            {
                hosts.AddRange(System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                    .SelectMany(n => n.GetIPProperties().UnicastAddresses)
                    .Select(u => (u.Address.IsIPv6LinkLocal ? new IPAddress(u.Address.GetAddressBytes()) : u.Address).ToString()));
            }
            catch (System.Net.NetworkInformation.NetworkInformationException)
            {
                // No interface list: only the host name and loopback pass the Host check.
            }
        }

        return hosts;
    }

    private static partial class Log
    {
        [LoggerMessage(4101, LogLevel.Information, "Control endpoint on {Url}/ (/status, /metrics, /healthz)")]
        public static partial void Listening(ILogger logger, string url);

        [LoggerMessage(4104, LogLevel.Information, "Control endpoint: no node.control.tokenFile; state-changing requests (POST /generator/...) are refused (403), reads are open")]
        public static partial void NoToken(ILogger logger);

        [LoggerMessage(4105, LogLevel.Warning, "Control endpoint: node.control.allowUnauthenticated is set; any local process (and any web page that gets past the Host/Origin checks) may pause the generator")]
        public static partial void Unauthenticated(ILogger logger);
    }
}
