using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Control.Http;

/// <summary>What a route answers: status code, content type and body (empty for 204-like answers).</summary>
public readonly record struct ControlResponse(int Status, string ContentType, ReadOnlyMemory<byte> Body)
{
    public const string PlainText = "text/plain; charset=utf-8";
    public const string JsonContent = "application/json; charset=utf-8";

    public static ControlResponse Text(int status, string text) => new(status, PlainText, Encoding.UTF8.GetBytes(text));
}

/// <summary>Answers one GET (or HEAD) of a route; the token ends with the request's deadline or the server's stop.</summary>
public delegate ValueTask<ControlResponse> ControlHandler(CancellationToken cancellationToken);

/// <summary>One request as routes that look at the method or the query see it (the path without query, trailing slash trimmed).</summary>
internal readonly record struct ControlRequest(string Method, string Path, string Query);

/// <summary>
/// A route that needs the method or the query (for example a POST): answers the request, or null when the path is not
/// one of its own (the route table is consulted next).
/// </summary>
internal delegate ValueTask<ControlResponse?> ControlRequestHandler(ControlRequest request, CancellationToken cancellationToken);

/// <summary>Limits of the control HTTP server.</summary>
internal sealed record ControlHttpOptions
{
    /// <summary>Largest request head (request line and headers) accepted; a longer one gets 431.</summary>
    public int MaxRequestHeadBytes { get; init; } = 8 * 1024;

    /// <summary>Time a client has to send its request head, and the server to answer it.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Connections served at once; more are answered 503 at once.</summary>
    public int MaxConcurrentConnections { get; init; } = 32;
}

/// <summary>
/// A small HTTP/1.1 server for the node's control endpoint on a <see cref="TcpListener"/>: GET and HEAD of exact paths
/// (a route table: path → handler), one request per connection (<c>Connection: close</c>), bounded request head,
/// per-request timeout, a cap on concurrent connections; 400 on a malformed request line, 404 on an unknown path,
/// 405 (with <c>Allow</c>) on other methods, 500 if a handler throws. Binding happens in <see cref="Start"/>, which
/// either listens or throws (<see cref="SocketException"/>): there is no half-started state and no race with clients
/// that connect early — they simply wait in the listen backlog until the accept loop runs.
/// </summary>
internal sealed partial class ControlHttpServer : IAsyncDisposable
{
    private readonly IPEndPoint _endpoint;
    private readonly IReadOnlyDictionary<string, ControlHandler> _routes;
    private readonly ControlRequestHandler? _requestRoutes;
    private readonly ControlHttpOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _slots;
    private TcpListener? _listener;
    private Task _accept = Task.CompletedTask;
    private int _active;
    private long _served;
    private long _rejected;
    private int _disposed;

    public ControlHttpServer(IPEndPoint endpoint, IReadOnlyDictionary<string, ControlHandler> routes, ControlHttpOptions? options = null, ILogger? logger = null,
        ControlRequestHandler? requestRoutes = null)
    {
        _endpoint = endpoint;
        _routes = routes;
        _requestRoutes = requestRoutes;
        _options = options ?? new ControlHttpOptions();
        _logger = logger ?? NullLogger.Instance;
        _slots = new SemaphoreSlim(_options.MaxConcurrentConnections);
    }

    /// <summary>Where the server listens (the bound port when started on port 0).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listener?.LocalEndpoint ?? _endpoint);

    /// <summary>Requests answered (any status).</summary>
    public long Served => Interlocked.Read(ref _served);

    /// <summary>Connections turned away with 503 because <see cref="ControlHttpOptions.MaxConcurrentConnections"/> were busy.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Binds and listens (throws <see cref="SocketException"/> when the port is taken), then accepts in the background.</summary>
    public void Start()
    {
        var listener = new TcpListener(_endpoint);
        listener.Start(backlog: 128);
        _listener = listener;
        _accept = Task.Run(AcceptLoopAsync);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Stop();
        try
        {
            await _accept.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        // Let in-flight requests finish (each is bounded by the request timeout).
        var deadline = DateTime.UtcNow + _options.RequestTimeout;
        while (Volatile.Read(ref _active) > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

    }

    private async Task AcceptLoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptSocketAsync(token).ConfigureAwait(false);
            }
            catch (Exception ex) when (token.IsCancellationRequested && ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // A connection reset before it was accepted: the listener is fine.
                Log.AcceptFailed(_logger, ex);
                continue;
            }

            Interlocked.Increment(ref _active);
            _ = Task.Run(() => ServeAsync(socket), CancellationToken.None);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        bool slot = _slots.Wait(0);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_options.RequestTimeout);
        try
        {
            socket.NoDelay = true;
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            ControlResponse response;
            bool head = false;
            if (!slot)
            {
                Interlocked.Increment(ref _rejected);
                response = ControlResponse.Text(503, "busy: too many control connections\n");
            }
            else
            {
                var (request, status) = await ReadHeadAsync(stream, timeout.Token).ConfigureAwait(false);
                head = request.Method == "HEAD";
                response = status != 0 ? ControlResponse.Text(status, status == 431 ? "request head too large\n" : "bad request\n")
                    : await RouteAsync(request, timeout.Token).ConfigureAwait(false);
            }

            await WriteAsync(stream, response, head, timeout.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _served);
            socket.Shutdown(SocketShutdown.Send); // a clean end of the response, not a reset
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, was too slow, or the node is stopping: nothing to answer.
        }
        finally
        {
            if (slot)
            {
                _slots.Release();
            }

            socket.Dispose();
            Interlocked.Decrement(ref _active);
        }
    }

    private async ValueTask<ControlResponse> RouteAsync(Request request, CancellationToken token)
    {
        if (_requestRoutes is not null)
        {
            try
            {
                if (await _requestRoutes(new ControlRequest(request.Method, request.Path, request.Query), token).ConfigureAwait(false) is { } answered)
                {
                    return answered;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.HandlerFailed(_logger, request.Path, ex);
                return ControlResponse.Text(500, "internal error\n");
            }
        }

        if (!_routes.TryGetValue(request.Path, out var handler))
        {
            return ControlResponse.Text(404, $"not found; try {string.Join(", ", _routes.Keys.Order(StringComparer.Ordinal))}\n");
        }

        if (request.Method is not ("GET" or "HEAD"))
        {
            return ControlResponse.Text(405, "only GET and HEAD\n");
        }

        try
        {
            return await handler(token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.HandlerFailed(_logger, request.Path, ex);
            return ControlResponse.Text(500, "internal error\n");
        }
    }

    private readonly record struct Request(string Method, string Path, string Query);

    /// <summary>Reads up to the blank line that ends the head; returns the request or a status (400, 431) to answer with.</summary>
    private async Task<(Request Request, int Status)> ReadHeadAsync(NetworkStream stream, CancellationToken token)
    {
        var buffer = new byte[_options.MaxRequestHeadBytes];
        int length = 0;
        int end;
        while ((end = HeadEnd(buffer.AsSpan(0, length))) < 0)
        {
            if (length == buffer.Length)
            {
                return (default, 431);
            }

            int n = await stream.ReadAsync(buffer.AsMemory(length), token).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("the client closed the connection before a complete request");
            }

            length += n;
        }

        // Request line: METHOD SP request-target SP HTTP/1.x
        var head = Encoding.ASCII.GetString(buffer, 0, end);
        int lineEnd = head.IndexOf('\r', StringComparison.Ordinal);
        var parts = (lineEnd < 0 ? head : head[..lineEnd]).Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return (default, 400);
        }

        var path = parts[1];
        var queryText = "";
        int query = path.IndexOfAny(['?', '#']);
        if (query >= 0)
        {
            int fragment = path.IndexOf('#', query);
            queryText = path[query] == '?' ? path[(query + 1)..(fragment < 0 ? path.Length : fragment)] : "";
            path = path[..query];
        }

        if (path.Length > 1)
        {
            path = path.TrimEnd('/');
        }

        return (new Request(parts[0], path, queryText), 0);
    }

    private static int HeadEnd(ReadOnlySpan<byte> data)
    {
        int i = data.IndexOf("\r\n\r\n"u8);
        return i < 0 ? -1 : i + 4;
    }

    private static async Task WriteAsync(NetworkStream stream, ControlResponse response, bool head, CancellationToken token)
    {
        var sb = new StringBuilder(256);
        sb.Append("HTTP/1.1 ").Append(response.Status).Append(' ').Append(Reason(response.Status)).Append("\r\n");
        sb.Append("Content-Type: ").Append(response.ContentType).Append("\r\n");
        sb.Append("Content-Length: ").Append(response.Body.Length).Append("\r\n");
        if (response.Status == 405)
        {
            sb.Append("Allow: GET, HEAD\r\n");
        }

        sb.Append("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()), token).ConfigureAwait(false);
        if (!head && response.Body.Length > 0)
        {
            await stream.WriteAsync(response.Body, token).ConfigureAwait(false);
        }

        await stream.FlushAsync(token).ConfigureAwait(false);
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };

    private static partial class Log
    {
        [LoggerMessage(4102, LogLevel.Warning, "Control endpoint: accepting a connection failed")]
        public static partial void AcceptFailed(ILogger logger, Exception exception);

        [LoggerMessage(4103, LogLevel.Error, "Control endpoint: the handler of {Path} failed")]
        public static partial void HandlerFailed(ILogger logger, string path, Exception exception);
    }
}
