using System.Security.Cryptography.X509Certificates;

namespace ClusterSync.Node.Tests.Control;

/// <summary>
/// <c>node.control.certificateFile</c> + <c>certificateKeyFile</c>: a real single-member node in-process whose control
/// endpoint speaks HTTPS only (a self-signed certificate for 127.0.0.1).
/// </summary>
public sealed class ControlEndpointTlsTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-control-tls-").FullName;
    private ClusterNode _node = null!;
    private X509Certificate2 _certificate = null!;
    private int _control;

    public async Task InitializeAsync()
    {
        (_, _, _certificate) = TestCertificates.WriteSelfSigned(_dir);
        _control = Ports.FreeTcp();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{_control}}, "certificateFile": "control.crt", "certificateKeyFile": "control.key" } }
            }
            """);
        _node = ClusterNode.FromConfigFile(config);
        await _node.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        _certificate.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Healthz_OverHttpsTrustingTheCertificate_200()
    {
        X509Certificate2? presented = null;
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };

        using var response = await http.GetAsync($"https://127.0.0.1:{_control}/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_certificate.Thumbprint, presented?.Thumbprint);
    }

    [Fact]
    public async Task Healthz_PlainHttpToTheHttpsEndpoint_NoAnswer()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"http://127.0.0.1:{_control}/healthz"));
    }

    [Fact]
    public async Task Healthz_UntrustedCertificate_RefusedByADefaultClient()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"https://127.0.0.1:{_control}/healthz"));
        Assert.IsType<System.Security.Authentication.AuthenticationException>(refused.InnerException);
    }
}
