using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Control.Http;

/// <summary>
/// What a route answers: status code, content type and body (empty for 204-like answers), or a body
/// <see cref="Writer"/> that streams a large answer straight to the connection (no Content-Length; the answer ends
/// when the server closes the connection), so the server never holds it whole.
/// </summary>
public readonly record struct ControlResponse(int Status, string ContentType, ReadOnlyMemory<byte> Body)
{
    public const string PlainText = "text/plain; charset=utf-8";
    public const string JsonContent = "application/json; charset=utf-8";

    /// <summary>Writes the body to the connection's stream (a streamed answer); null: <see cref="Body"/> is the answer.</summary>
    public Func<Stream, CancellationToken, Task>? Writer { get; init; }

    public static ControlResponse Text(int status, string text) => new(status, PlainText, Encoding.UTF8.GetBytes(text));

    public static ControlResponse Streamed(string contentType, Func<Stream, CancellationToken, Task> writer)
        => new(200, contentType, ReadOnlyMemory<byte>.Empty) { Writer = writer };
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

    /// <summary>Largest request body (no route reads one; it is received and discarded); a larger Content-Length gets 413.</summary>
    public int MaxRequestBodyBytes { get; init; } = 4 * 1024;

    /// <summary>Time a client has, from its connection, to send the whole request head (a slowloris is cut here).</summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Time a client has, after its head, to send the body it announced.</summary>
    public TimeSpan BodyTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Time for the route to answer and the answer to be written (a streamed report of a large table included).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Connections held at once. A new connection beyond this evicts the oldest one still sending its request (idle
    /// or slow: a slowloris), else the oldest one; so a prompt client is always served.
    /// </summary>
    public int MaxConnections { get; init; } = 128;

    /// <summary>Who may do what (Host/Origin checks, bearer token); open by default (tests).</summary>
    public ControlAccess Access { get; init; } = ControlAccess.Open;

    /// <summary>HTTPS: every connection starts with a TLS handshake (TLS 1.2 or 1.3, within the header deadline) with this certificate; null: plain HTTP.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? Certificate { get; init; }
}

/// <summary>
/// A small HTTP/1.1 server for the node's control endpoint on a <see cref="TcpListener"/>: exact paths (a route table:
/// path → handler, GET and HEAD, no query parameters; and request routes that see method and query), one request per
/// connection (<c>Connection: close</c>), bounded request head and body, header, body and answer deadlines (on the
/// injected <see cref="TimeProvider"/>), a bounded connection count that evicts slow senders first, and the access
/// checks of <see cref="ControlAccess"/> before any route runs. 400 on a malformed request, 401/403 from the access
/// checks, 404 on an unknown path, 405 (with <c>Allow</c>) on other methods, 413 on a large body, 431 on a large head,
/// 500 if a handler throws. The accept loop never waits on a client. Binding happens in <see cref="Start"/>, which
/// either listens or throws (<see cref="SocketException"/>): there is no half-started state and no race with clients
/// that connect early — they simply wait in the listen backlog until the accept loop runs.
/// </summary>
internal sealed partial class ControlHttpServer : IAsyncDisposable
{
    private readonly IPEndPoint _endpoint;
    private readonly IReadOnlyDictionary<string, ControlHandler> _routes;
    private readonly ControlRequestHandler? _requestRoutes;
    private readonly ControlHttpOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<long, Connection> _connections = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TcpListener? _listener;
    private SslStreamCertificateContext? _tls;
    private Task _accept = Task.CompletedTask;
    private long _nextId;
    private long _served;
    private long _rejected;
    private long _evicted;
    private long _timedOut;
    private int _disposed;

    public ControlHttpServer(IPEndPoint endpoint, IReadOnlyDictionary<string, ControlHandler> routes, TimeProvider time, ControlHttpOptions? options = null,
        ILogger? logger = null, ControlRequestHandler? requestRoutes = null)
    {
        _endpoint = endpoint;
        _routes = routes;
        _requestRoutes = requestRoutes;
        _options = options ?? new ControlHttpOptions();
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Where the server listens (the bound port when started on port 0).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listener?.LocalEndpoint ?? _endpoint);

    /// <summary>Requests answered (any status).</summary>
    public long Served => Interlocked.Read(ref _served);

    /// <summary>Connections turned away with 503 (none could be evicted).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Connections closed to make room for a new one (<see cref="ControlHttpOptions.MaxConnections"/> reached).</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>Connections closed because the client missed the header or body deadline.</summary>
    public long TimedOut => Interlocked.Read(ref _timedOut);

    /// <summary>Connections open now.</summary>
    public int Open => _connections.Count;

    /// <summary>Open connections whose header deadline is running on the server's clock (a test driving a fake clock waits for it).</summary>
    public int Armed
    {
        get
        {
            int armed = 0;
            foreach (var c in _connections.Values)
            {
                if (c.DeadlineArmed)
                {
                    armed++;
                }
            }

            return armed;
        }
    }

    /// <summary>Binds and listens (throws <see cref="SocketException"/> when the port is taken), then accepts in the background.</summary>
    public void Start()
    {
        // The certificate's chain is built once, here, offline (never per handshake, never fetched from the network).
        _tls ??= _options.Certificate is { } certificate ? SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true) : null;
        var listener = new TcpListener(_endpoint);
        listener.Start(backlog: 512);
        _listener = listener;
        _accept = Task.Run(AcceptLoopAsync);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false); // every connection's token is linked to it
        _listener?.Stop();
        try
        {
            await _accept.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            if (_connections.IsEmpty)
            {
                _drained.TrySetResult();
            }

            await _drained.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private sealed class Connection(long id, long accepted, Socket socket, CancellationToken stop)
    {
        public long Id { get; } = id;

        public long Accepted { get; } = accepted;

        public Socket Socket { get; } = socket;

        public CancellationTokenSource Cancel { get; } = CancellationTokenSource.CreateLinkedTokenSource(stop);

        /// <summary>Still waiting for the client's head or body (an eviction candidate before anything else).</summary>
        public volatile bool Receiving = true;
        public volatile bool DeadlineArmed;

        public volatile bool Evicted;
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

            bool room = _connections.Count < _options.MaxConnections || Evict();
            var connection = new Connection(Interlocked.Increment(ref _nextId), _time.GetTimestamp(), socket, token);
            _connections[connection.Id] = connection;
            _ = Task.Run(() => ServeAsync(connection, room), CancellationToken.None);
        }
    }

    /// <summary>Closes the oldest connection still sending its request, else the oldest one; false when none is open.</summary>
    private bool Evict()
    {
        Connection? victim = null;
        foreach (var c in _connections.Values)
        {
            if (c.Evicted)
            {
                continue;
            }

            if (victim is null || (c.Receiving && !victim.Receiving) || (c.Receiving == victim.Receiving && c.Accepted < victim.Accepted))
            {
                victim = c;
            }
        }

        if (victim is null)
        {
            return false;
        }

        victim.Evicted = true;
        Interlocked.Increment(ref _evicted);
        try
        {
            victim.Cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        return true;
    }

    private async Task ServeAsync(Connection connection, bool room)
    {
        var socket = connection.Socket;
        var token = connection.Cancel.Token;
        bool timedOut = false;
        using var deadline = _time.CreateTimer(_ =>
        {
            timedOut = true;
            try
            {
                connection.Cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }, null, _options.HeaderTimeout, Timeout.InfiniteTimeSpan);
        connection.DeadlineArmed = true;
        try
        {
            socket.NoDelay = true;
            await using var network = new NetworkStream(socket, ownsSocket: true);
            await using var tls = _tls is null ? null : new SslStream(network, leaveInnerStreamOpen: true);
            Stream stream = network;
            if (tls is not null)
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = _tls,
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    ClientCertificateRequired = false,
                }, token).ConfigureAwait(false);
                stream = tls;
            }

            ControlResponse response;
            bool head = false;
            if (!room)
            {
                Interlocked.Increment(ref _rejected);
                response = ControlResponse.Text(503, "busy: too many control connections\n");
            }
            else
            {
                var (request, status) = await ReadRequestAsync(stream, deadline, token).ConfigureAwait(false);
                connection.Receiving = false;
                deadline.Change(_options.RequestTimeout, Timeout.InfiniteTimeSpan);
                head = request.Method == "HEAD";
                response = status != 0 ? ControlResponse.Text(status, StatusText(status))
                    : _options.Access.Check(request.Method, request.Host, request.Origin, request.Authorization) is { } refused
                        ? ControlResponse.Text(refused.Status, refused.Reason)
                        : await RouteAsync(request, token).ConfigureAwait(false);
            }

            connection.Receiving = false;
            await WriteAsync(stream, response, head, token).ConfigureAwait(false);
            Interlocked.Increment(ref _served);
            if (tls is not null)
            {
                await tls.ShutdownAsync().ConfigureAwait(false); // TLS close_notify before the TCP end
            }

            socket.Shutdown(SocketShutdown.Send); // a clean end of the response, not a reset
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            // The client went away, was too slow or evicted, failed the TLS handshake (plain HTTP to an HTTPS endpoint),
            // or the node is stopping: nothing to answer.
            if (timedOut && !connection.Evicted)
            {
                Interlocked.Increment(ref _timedOut);
            }
        }
        finally
        {
            socket.Dispose();
            _connections.TryRemove(connection.Id, out _);
            connection.Cancel.Dispose();
            if (_stop.IsCancellationRequested && _connections.IsEmpty)
            {
                _drained.TrySetResult();
            }
        }
    }

    private static string StatusText(int status) => status switch
    {
        413 => "request body too large\n",
        431 => "request head too large\n",
        _ => "bad request\n",
    };

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

        if (request.Query.Split('&', StringSplitOptions.RemoveEmptyEntries) is [var first, ..])
        {
            int eq = first.IndexOf('=', StringComparison.Ordinal);
            return ControlResponse.Text(400, $"{Uri.UnescapeDataString(eq < 0 ? first : first[..eq])}: unknown query parameter; {request.Path} takes none\n");
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

    private readonly record struct Request(string Method, string Path, string Query, string? Host, string? Origin, string? Authorization);

    /// <summary>
    /// Reads the head (up to the blank line) within the header deadline, then the announced body (discarded) within
    /// the body deadline; returns the request or a status (400, 413, 431) to answer with.
    /// </summary>
    private async Task<(Request Request, int Status)> ReadRequestAsync(Stream stream, ITimer deadline, CancellationToken token)
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
        var lines = Encoding.ASCII.GetString(buffer, 0, end - 4).Split("\r\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            return (default, 400);
        }

        string? host = null, origin = null, authorization = null;
        long contentLength = 0;
        for (int i = 1; i < lines.Length; i++)
        {
            int colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return (default, 400);
            }

            var name = lines[i][..colon];
            var value = lines[i][(colon + 1)..].Trim();
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                if (host is not null)
                {
                    return (default, 400); // two Host headers: ambiguous (RFC 9112 3.2)
                }

                host = value;
            }
            else if (name.Equals("Origin", StringComparison.OrdinalIgnoreCase))
            {
                origin = value;
            }
            else if (name.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                authorization = value;
            }
            else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long cl)
                    || (contentLength != 0 && cl != contentLength))
                {
                    return (default, 400);
                }

                contentLength = cl;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                return (default, 400); // no route takes a body; a chunked one is refused rather than parsed
            }
        }

        if (contentLength > _options.MaxRequestBodyBytes)
        {
            return (default, 413);
        }

        // The body (no route reads one): received and discarded, so the client sees its answer, not a reset.
        long remaining = contentLength - (length - end);
        if (remaining > 0)
        {
            deadline.Change(_options.BodyTimeout, Timeout.InfiniteTimeSpan);
            while (remaining > 0)
            {
                int n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), token).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException("the client closed the connection before the end of its body");
                }

                remaining -= n;
            }
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

        return (new Request(parts[0], path, queryText, host, origin, authorization), 0);
    }

    private static int HeadEnd(ReadOnlySpan<byte> data)
    {
        int i = data.IndexOf("\r\n\r\n"u8);
        return i < 0 ? -1 : i + 4;
    }

    private static async Task WriteAsync(Stream stream, ControlResponse response, bool head, CancellationToken token)
    {
        var sb = new StringBuilder(256);
        sb.Append("HTTP/1.1 ").Append(response.Status).Append(' ').Append(Reason(response.Status)).Append("\r\n");
        sb.Append("Content-Type: ").Append(response.ContentType).Append("\r\n");
        if (response.Writer is null)
        {
            sb.Append("Content-Length: ").Append(response.Body.Length).Append("\r\n");
        }

        if (response.Status == 405)
        {
            sb.Append("Allow: GET, HEAD\r\n");
        }
        else if (response.Status == 401)
        {
            sb.Append("WWW-Authenticate: Bearer realm=\"clustersync\"\r\n");
        }

        sb.Append("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()), token).ConfigureAwait(false);
        if (!head && response.Writer is { } writer)
        {
            await writer(stream, token).ConfigureAwait(false);
        }
        else if (!head && response.Body.Length > 0)
        {
            await stream.WriteAsync(response.Body, token).ConfigureAwait(false);
        }

        await stream.FlushAsync(token).ConfigureAwait(false);
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        409 => "Conflict",
        413 => "Content Too Large",
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
