using System.Net.Http.Headers;
using System.Net.NetworkInformation;

namespace ClusterSync.Node.Tests.Control;

/// <summary>
/// <c>node.control.address: 0.0.0.0</c> (operators and Prometheus on the network): a real single-member node in-process
/// whose endpoint listens on every interface and, as validation demands there, wants the token for reads too.
/// </summary>
public sealed class ControlEndpointNetworkTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-control-net-").FullName;
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
              "node": { "memberId": 1, "control": { "address": "0.0.0.0", "port": {{_control}}, "tokenFile": "control.token", "requireTokenForReads": true } }
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

    private async Task<HttpStatusCode> GetAsync(IPAddress address, string path, string? token, string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{new IPEndPoint(address, _control)}{path}");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await _http.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task Reads_OnWildcardAddress_NeedTheToken()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(IPAddress.Loopback, "/status", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(IPAddress.Loopback, "/metrics", "wrong-token-wrong-token"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(IPAddress.Loopback, "/metrics", _token));
    }

    [Fact]
    public async Task HostHeader_MachineNameOrInterfaceAddress_Accepted_ForeignName_403()
    {
        Assert.Equal(HttpStatusCode.OK, await GetAsync(IPAddress.Loopback, "/status", _token, $"{Dns.GetHostName()}:{_control}"));
        Assert.Equal(HttpStatusCode.Forbidden, await GetAsync(IPAddress.Loopback, "/status", _token, $"attacker.example:{_control}"));
    }

    [SkippableFact]
    public async Task NonLoopbackInterfaceAddress_Reachable_WithTokenOnly()
    {
        // Every IPv4 address of this machine's interfaces that is not loopback (a container has at least its veth).
        var address = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(u => u.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        Skip.If(address is null, "no non-loopback IPv4 address on this machine (only loopback is up)");

        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(address!, "/status", null));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(address!, "/status", _token));
    }
}
