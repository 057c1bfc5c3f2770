using System.Net.Http.Headers;

namespace ClusterSync.Node.Tests.Control;

/// <summary>A real single-member node in-process (generator held) and its control endpoint with a token file.</summary>
public sealed class ControlEndpointTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-control-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private ClusterNode _node = null!;
    private string _token = "";
    private int _control;

    public async Task InitializeAsync()
    {
        _token = ControlTokenFile.Write(Path.Combine(_dir, "control.token"));
        _control = Ports.FreeTcp();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{_control}}, "tokenFile": "control.token" } },
              "dataPlane": { "source": "generator", "generator": { "connections": 100, "changesPerSecond": 100, "paused": true } }
            }
            """);
        _node = ClusterNode.FromConfigFile(config);
        await _node.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string pathAndQuery, string? token = null,
        string? host = null, string? origin = null)
    {
        using var request = new HttpRequestMessage(method, $"http://127.0.0.1:{_control}{pathAndQuery}");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (host is not null)
        {
            request.Headers.Host = host;
        }

        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task GeneratorPause_WithoutToken_401()
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "/generator/pause");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Contains("Bearer", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GeneratorResume_WrongToken_401AndGeneratorStillHeld()
    {
        var (status, _) = await SendAsync(HttpMethod.Post, "/generator/resume", token: "not-the-token-not-the-token");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        var (_, ownership) = await SendAsync(HttpMethod.Get, "/ownership");
        Assert.Contains("\"generatorLive\":0", ownership, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GeneratorPauseAndResume_WithToken_200()
    {
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, "/generator/resume?rate=1000", _token)).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, "/generator/pause", _token)).Status);
    }

    [Fact]
    public async Task Reads_WithoutToken_200()
    {
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/status")).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/ownership?connections=false")).Status);
    }

    [Theory]
    [InlineData("evil.example", null)]
    [InlineData("evil.example:9116", null)]
    [InlineData(null, "http://evil.example")]
    public async Task GeneratorPause_ForeignHostOrOriginWithToken_403(string? host, string? origin)
    {
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Post, "/generator/pause", _token, host, origin)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, "/status", null, host, origin)).Status);
    }

    [Theory]
    [InlineData("/generator/resume?rate=1e308", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=NaN", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=Infinity", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=-5", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=0", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=fast", "rate: expected a finite number")]
    [InlineData("/generator/resume?rate=", "rate: expected a value")]
    [InlineData("/generator/resume?rate=5&rate=6", "rate: given more than once")]
    [InlineData("/generator/resume?speed=5", "speed: unknown query parameter; /generator/resume takes rate")]
    [InlineData("/generator/pause?rate=5", "rate: unknown query parameter; /generator/pause takes none")]
    [InlineData("/generator/resume?rate=%31e308", "rate: expected a finite number")]
    public async Task Generator_BadQueryParameter_400NamingIt(string pathAndQuery, string reason)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, pathAndQuery, _token);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(reason, body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/ownership?connections=yes", "connections: expected 'true' or 'false'")]
    [InlineData("/ownership?limit=10", "limit: unknown query parameter; /ownership takes connections")]
    [InlineData("/status?verbose=1", "verbose: unknown query parameter; /status takes none")]
    [InlineData("/healthz?x", "x: unknown query parameter")]
    public async Task Reads_BadQueryParameter_400NamingIt(string pathAndQuery, string reason)
    {
        var (status, body) = await SendAsync(HttpMethod.Get, pathAndQuery);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(reason, body, StringComparison.Ordinal);
    }
}
