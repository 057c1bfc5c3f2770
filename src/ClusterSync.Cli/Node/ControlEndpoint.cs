using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Cli.Node;

/// <summary>
/// The local control endpoint on 127.0.0.1 (<c>node.control.port</c>): <c>GET /status</c> (JSON),
/// <c>/metrics</c> (Prometheus text) and <c>/healthz</c> (200 while the engine runs, 503 otherwise).
/// <see cref="HttpListener"/> keeps the node free of an ASP.NET host; it binds to loopback only.
/// </summary>
internal sealed partial class ControlEndpoint : IHostedService, IDisposable
{
    public static readonly JsonSerializerOptions StatusJson = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly NodeRuntime _node;
    private readonly NodeMetrics _metrics;
    private readonly ILogger<ControlEndpoint> _logger;
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private Task? _accept;
    private int _disposed;

    public ControlEndpoint(NodeRuntime node, ILogger<ControlEndpoint> logger)
    {
        _node = node;
        _metrics = new NodeMetrics(node);
        _logger = logger;
    }

    public int Port => _node.Config.Config.Node.Control.Port;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        try
        {
            _listener.Start();
        }
        catch (HttpListenerException ex)
        {
            throw new NodeStartException($"{_node.Config.Path}: node.control.port: cannot listen on 127.0.0.1:{Port}: {ex.Message}");
        }

        Log.Listening(_logger, Port);
        _accept = Task.Run(AcceptLoop, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        if (_accept is not null)
        {
            await _accept.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _listener.Close();
        _stop.Dispose();
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (_stop.IsCancellationRequested && ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            catch (HttpListenerException ex)
            {
                Log.AcceptFailed(_logger, ex);
                continue;
            }

            _ = Task.Run(() => HandleAsync(context), CancellationToken.None);
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            if (context.Request.HttpMethod is not ("GET" or "HEAD"))
            {
                await WriteTextAsync(response, 405, "text/plain; charset=utf-8", "only GET\n").ConfigureAwait(false);
                return;
            }

            switch (context.Request.Url?.AbsolutePath.TrimEnd('/'))
            {
                case "/status":
                    await WriteTextAsync(response, 200, "application/json; charset=utf-8",
                        JsonSerializer.Serialize(_node.GetStatus(), StatusJson) + "\n").ConfigureAwait(false);
                    break;
                case "/metrics":
                    response.StatusCode = 200;
                    response.ContentType = NodeMetrics.ContentType;
                    using (var buffer = new MemoryStream())
                    {
                        await _metrics.WriteAsync(buffer, _stop.Token).ConfigureAwait(false);
                        response.ContentLength64 = buffer.Length;
                        buffer.Position = 0;
                        await buffer.CopyToAsync(response.OutputStream, _stop.Token).ConfigureAwait(false);
                    }

                    break;
                case "/healthz":
                    var engine = _node.Engine;
                    if (engine.IsRunning)
                    {
                        await WriteTextAsync(response, 200, "text/plain; charset=utf-8", "ok\n").ConfigureAwait(false);
                    }
                    else
                    {
                        await WriteTextAsync(response, 503, "text/plain; charset=utf-8", $"unhealthy: {engine.Failure ?? "the engine is not running"}\n").ConfigureAwait(false);
                    }

                    break;
                case var path when await Demo.FailoverRoutes.TryHandleAsync(_node, path, response).ConfigureAwait(false):
                    break;
                default:
                    await WriteTextAsync(response, 404, "text/plain; charset=utf-8", "not found; try /status, /metrics or /healthz\n").ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, or the node is stopping.
        }
        catch (Exception ex)
        {
            Log.RequestFailed(_logger, ex);
            try
            {
                response.StatusCode = 500;
            }
            catch (InvalidOperationException)
            {
            }
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    private static async Task WriteTextAsync(HttpListenerResponse response, int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        response.StatusCode = status;
        response.ContentType = contentType;
        response.ContentLength64 = bytes.Length;
        await response.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(2101, LogLevel.Information, "Control endpoint on http://127.0.0.1:{Port}/ (/status, /metrics, /healthz)")]
        public static partial void Listening(ILogger logger, int port);

        [LoggerMessage(2102, LogLevel.Warning, "Control endpoint: accepting a request failed")]
        public static partial void AcceptFailed(ILogger logger, Exception exception);

        [LoggerMessage(2103, LogLevel.Error, "Control endpoint: a request failed")]
        public static partial void RequestFailed(ILogger logger, Exception exception);
    }
}

/// <summary>The node could not start (a port in use): the message names the file and the field (exit code 1).</summary>
internal sealed class NodeStartException(string message) : Exception(message);
