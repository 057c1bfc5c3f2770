namespace ClusterSync.Node.Tests.Control.Http;

/// <summary>
/// The control endpoint's HTTP/1.1 server on a real loopback socket (ephemeral port). Its deadlines run on a fake clock
/// that only the deadline test moves: a loaded machine that takes longer than the header timeout between a connection
/// and its read cannot turn another test's answer into a closed connection.
/// </summary>
public sealed class ControlHttpServerTests : IAsyncLifetime
{
    private static readonly TimeSpan s_headerTimeout = TimeSpan.FromMilliseconds(500);
    private readonly FakeTimeProvider _time = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private ControlHttpServer _server = null!;
    private readonly TaskCompletionSource _slowGate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _calls;

    private string Url(string path) => $"http://127.0.0.1:{_server.LocalEndPoint.Port}{path}";

    public Task InitializeAsync()
    {
        var routes = new Dictionary<string, ControlHandler>(StringComparer.Ordinal)
        {
            ["/hello"] = _ =>
            {
                Interlocked.Increment(ref _calls);
                return ValueTask.FromResult(ControlResponse.Text(200, "hello\n"));
            },
            ["/slow"] = async ct =>
            {
                await _slowGate.Task.WaitAsync(ct); // "slow": held until the test releases it
                return ControlResponse.Text(200, "slow\n");
            },
            ["/boom"] = _ => throw new InvalidOperationException("a bug in a handler"),
        };
        _server = new ControlHttpServer(new IPEndPoint(IPAddress.Loopback, 0), routes, _time,
            new ControlHttpOptions { HeaderTimeout = s_headerTimeout, MaxRequestHeadBytes = 1024, MaxConnections = 64 });
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _slowGate.TrySetResult();
        _http.Dispose();
        await _server.DisposeAsync();
    }

    /// <summary>Sends <paramref name="request"/> as raw bytes and reads the whole answer until the server closes.</summary>
    private async Task<string> RawAsync(string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_server.LocalEndPoint);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await reader.ReadToEndAsync(cts.Token);
    }

    [Fact]
    public async Task Get_KnownRoute_200WithBodyLengthAndClose()
    {
        var answer = await RawAsync("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Content-Type: text/plain; charset=utf-8\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 6\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nhello\n", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_WithHttpClientAndTrailingSlash_RoutesToPath()
    {
        Assert.Equal("hello\n", await _http.GetStringAsync(Url("/hello/")));
    }

    [Fact]
    public async Task Get_UnknownPath_404NamingTheRoutes()
    {
        using var response = await _http.GetAsync(Url("/nope"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("/hello", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_KnownRoute_405WithAllowAndHandlerNotCalled()
    {
        using var response = await _http.PostAsync(Url("/hello"), new StringContent("x"));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(["GET", "HEAD"], response.Content.Headers.Allow.Order());
        Assert.Equal(0, _calls);
    }

    [Fact]
    public async Task Head_KnownRoute_HeadersWithoutBody()
    {
        var answer = await RawAsync("HEAD /hello HTTP/1.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Content-Length: 6\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", answer, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("GET hello HTTP/1.1\r\n\r\n")]
    [InlineData("GET /hello SPDY/3\r\n\r\n")]
    public async Task Request_MalformedRequestLine_400(string request)
    {
        Assert.StartsWith("HTTP/1.1 400 ", await RawAsync(request), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_HeadLargerThanLimit_431()
    {
        var answer = await RawAsync("GET /hello HTTP/1.1\r\nX-Big: " + new string('a', 2000) + "\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 ", answer, StringComparison.Ordinal);
        Assert.Equal(0, _calls);
    }

    [Fact]
    public async Task Handler_Throws_500AndServerKeepsServing()
    {
        using var response = await _http.GetAsync(Url("/boom"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("hello\n", await _http.GetStringAsync(Url("/hello")));
    }

    [Fact]
    public async Task SilentClient_ClosedAfterTimeout_OthersServedMeanwhile()
    {
        using var silent = new TcpClient();
        await silent.ConnectAsync(_server.LocalEndPoint);
        await Wait.WaitUntilAsync(() => _server.Armed == 1, "the server holds the silent connection with its header deadline armed", TimeSpan.FromSeconds(10));

        Assert.Equal("hello\n", await _http.GetStringAsync(Url("/hello")));

        var buffer = new byte[16];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = silent.GetStream().ReadAsync(buffer, cts.Token).AsTask();
        _time.Advance(s_headerTimeout - TimeSpan.FromMilliseconds(1));
        Assert.False(read.IsCompleted, "closed before its header deadline");
        _time.Advance(TimeSpan.FromMilliseconds(1)); // the server gives up on it at 500 ms on its clock
        Assert.Equal(0, await read);
        // The server closes the connection, then counts it: the count can trail the close the client sees.
        await Wait.WaitUntilAsync(() => _server.TimedOut >= 1, "the server counted the timed-out connection", TimeSpan.FromSeconds(10));
        Assert.Equal(1, _server.TimedOut);
    }

    [Fact]
    public async Task ManyConcurrentClients_EveryOneAnswered()
    {
        var requests = Enumerable.Range(0, 40).Select(i => _http.GetStringAsync(Url(i % 2 == 0 ? "/hello" : "/slow"))).ToList();

        // The 20 /hello answers arrive while the 20 /slow handlers are still held; then the slow ones are let go.
        await Task.WhenAll(requests.Where((_, i) => i % 2 == 0));
        _slowGate.TrySetResult();
        var bodies = await Task.WhenAll(requests);

        Assert.Equal(20, bodies.Count(b => b == "hello\n"));
        Assert.Equal(20, bodies.Count(b => b == "slow\n"));
    }

    [Fact]
    public void Start_PortAlreadyInUse_ThrowsSocketException()
    {
        var taken = new ControlHttpServer(_server.LocalEndPoint, new Dictionary<string, ControlHandler>(), TimeProvider.System);

        Assert.Throws<SocketException>(taken.Start);
    }
}
