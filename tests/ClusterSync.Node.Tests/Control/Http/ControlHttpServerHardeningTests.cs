using System.Diagnostics;

namespace ClusterSync.Node.Tests.Control.Http;

/// <summary>The control HTTP server against hostile and careless clients, on real loopback sockets.</summary>
public sealed class ControlHttpServerHardeningTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncDisposable
{
    private const string Token = "0123456789abcdef0123456789abcdef";
    private readonly List<Socket> _attackers = [];
    private ControlHttpServer? _server;

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _attackers)
        {
            s.Dispose();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private ControlHttpServer Start(ControlHttpOptions? options = null, TimeProvider? time = null)
    {
        var routes = new Dictionary<string, ControlHandler>(StringComparer.Ordinal)
        {
            ["/healthz"] = _ => ValueTask.FromResult(ControlResponse.Text(200, "ok\n")),
            ["/big"] = _ => ValueTask.FromResult(ControlResponse.Streamed(ControlResponse.PlainText, async (stream, ct) =>
            {
                var line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
                for (int i = 0; i < 1024; i++)
                {
                    await stream.WriteAsync(line, ct);
                }
            })),
        };
        ControlRequestHandler post = (request, _) => ValueTask.FromResult<ControlResponse?>(
            request.Path == "/poke" ? ControlResponse.Text(200, "poked\n") : null);
        _server = new ControlHttpServer(new IPEndPoint(IPAddress.Loopback, 0), routes, time ?? TimeProvider.System,
            options ?? new ControlHttpOptions { Access = new ControlAccess(Token, bindAddress: IPAddress.Loopback) }, requestRoutes: post);
        _server.Start();
        return _server;
    }

    /// <summary>Sends raw bytes on a new connection and reads the whole answer until the server closes.</summary>
    private async Task<string> RawAsync(string request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(_server!.LocalEndPoint);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await reader.ReadToEndAsync(cts.Token);
    }

    /// <summary>Opens connections that send part of a head and then one more header byte now and then, never the blank line.</summary>
    private async Task<CancellationTokenSource> SlowlorisAsync(int connections)
    {
        for (int i = 0; i < connections; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await s.ConnectAsync(_server!.LocalEndPoint);
            await s.SendAsync(Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: "));
            _attackers.Add(s);
        }

        var stop = new CancellationTokenSource();
        _ = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (var s in _attackers)
                {
                    try
                    {
                        await s.SendAsync("a"u8.ToArray());
                    }
                    catch (SocketException)
                    {
                    }
                }

                await Task.Delay(50, CancellationToken.None);
            }
        });
        return stop;
    }

    [Fact]
    public async Task Healthz_Under64SlowlorisConnections_MedianWithin100MsNoneNearTheDeadline()
    {
        Start();
        using var stop = await SlowlorisAsync(64);
        Assert.StartsWith("HTTP/1.1 200", await RawAsync("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), StringComparison.Ordinal); // warm-up (JIT)

        var latencies = new List<TimeSpan>();
        for (int i = 0; i < 30; i++)
        {
            var watch = Stopwatch.StartNew();
            var answer = await RawAsync("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            watch.Stop();
            Assert.StartsWith("HTTP/1.1 200 OK", answer, StringComparison.Ordinal);
            latencies.Add(watch.Elapsed);
        }

        await stop.CancelAsync();
        latencies.Sort();
        var slowest = latencies[^1];
        output.WriteLine($"/healthz under 64 slowloris connections ({_server!.Open} open): median {latencies[15].TotalMilliseconds:0.00} ms, slowest {slowest.TotalMilliseconds:0.00} ms of 30");
        // The bar is 100 ms; a loaded CI machine can stretch one probe, so the median must meet it and the slowest must
        // stay far below the 3 s header deadline a blocked server would wait out.
        Assert.True(latencies[15] < TimeSpan.FromMilliseconds(100), $"median /healthz under 64 slowloris connections: {latencies[15].TotalMilliseconds:0.0} ms");
        Assert.True(slowest < TimeSpan.FromSeconds(1), $"slowest /healthz under 64 slowloris connections: {slowest.TotalMilliseconds:0.0} ms");
        Assert.True(_server!.Open >= 64, $"the slowloris connections are still held ({_server.Open}): the test measured under attack");
    }

    [Fact]
    public async Task NewConnection_AtConnectionLimit_EvictsSlowSenderAndIsAnswered()
    {
        Start(new ControlHttpOptions { MaxConnections = 8 });
        using var stop = await SlowlorisAsync(32);

        for (int i = 0; i < 5; i++)
        {
            Assert.StartsWith("HTTP/1.1 200 OK", await RawAsync("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"), StringComparison.Ordinal);
        }

        Assert.True(_server!.Evicted >= 24, $"evicted {_server.Evicted}");
        Assert.Equal(0, _server.Rejected);
    }

    [Fact]
    public async Task SlowHead_PastHeaderDeadlineOnTheServersClock_ClosedAndCounted()
    {
        var time = new FakeTimeProvider();
        Start(new ControlHttpOptions { HeaderTimeout = TimeSpan.FromSeconds(3) }, time);
        using var client = new TcpClient();
        await client.ConnectAsync(_server!.LocalEndPoint);
        await client.GetStream().WriteAsync("GET /healthz HTTP/1.1\r\n"u8.ToArray());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Wait.WaitUntilAsync(() => _server.Armed != 0, "the server holds the connection with its header deadline armed", TimeSpan.FromSeconds(10));

        var read = client.GetStream().ReadAsync(new byte[64], cts.Token).AsTask();
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(read.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1.5));

        Assert.Equal(0, await read);
        Assert.Equal(1, _server.TimedOut);
    }

    [Fact]
    public async Task Post_WithoutToken_401WithChallenge()
    {
        Start();

        var answer = await RawAsync("POST /poke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 401 Unauthorized\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("WWW-Authenticate: Bearer", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("poked", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_WithTokenAndBody_200()
    {
        Start();

        var answer = await RawAsync($"POST /poke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {Token}\r\nContent-Length: 5\r\n\r\nhello");

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.EndsWith("poked\n", answer, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host: evil.example:9116\r\n")]
    [InlineData("Host: 127.0.0.1\r\nOrigin: http://evil.example\r\n")]
    public async Task Request_ForeignHostOrOrigin_403(string headers)
    {
        Start();

        Assert.StartsWith("HTTP/1.1 403 Forbidden", await RawAsync($"POST /poke HTTP/1.1\r\n{headers}Authorization: Bearer {Token}\r\n\r\n"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 403 Forbidden", await RawAsync($"GET /healthz HTTP/1.1\r\n{headers}\r\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_TwoHostHeaders_400()
    {
        Start();

        Assert.StartsWith("HTTP/1.1 400 ", await RawAsync("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Content-Length: 100000\r\n", "413")]
    [InlineData("Transfer-Encoding: chunked\r\n", "400")]
    [InlineData("Content-Length: -1\r\n", "400")]
    public async Task Post_LargeOrUnsupportedBody_Refused(string header, string status)
    {
        Start();

        Assert.StartsWith($"HTTP/1.1 {status} ", await RawAsync($"POST /poke HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {Token}\r\n{header}\r\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_RouteWithQueryParameter_400NamingIt()
    {
        Start();

        var answer = await RawAsync("GET /healthz?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        Assert.Contains("verbose: unknown query parameter", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_StreamedAnswer_WholeBodyWithoutContentLength()
    {
        Start();
        using var http = new HttpClient();

        using var response = await http.GetAsync($"http://127.0.0.1:{_server!.LocalEndPoint.Port}/big", HttpCompletionOption.ResponseHeadersRead);
        Assert.Null(response.Content.Headers.ContentLength);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1024 * 1024, body.Length);
    }
}
