namespace ClusterSync.IntegrationTests.Node;

/// <summary>The embedding surface (README, Embedding a node): a node started and stopped in-process from its configuration file.</summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class ClusterNodeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-embedded-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task FromConfigFile_SingleMemberStarted_BecomesActiveAndServesHealthUntilStopped()
    {
        int sync = Ports.FreeUdp(), control = Ports.FreeTcp(), fullSync = Ports.FreeTcp();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{sync}}", "fullSyncPort": {{fullSync}} } ] },
              "node": { "memberId": 1, "control": { "port": {{control}} } }
            }
            """);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        await using var node = ClusterNode.FromConfigFile(config);
        Assert.Null(node.State);
        await node.StartAsync();

        await Wait.WaitUntilAsync(() => node.State == "Active", "the embedded node to become Active", TimeSpan.FromSeconds(30));
        Assert.Equal(1, node.MemberId);
        Assert.Equal(new Uri($"http://127.0.0.1:{control}"), node.ControlEndpoint);
        var health = await http.GetAsync(new Uri(node.ControlEndpoint!, "/healthz"));
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);

        await node.StopAsync();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync(new Uri(node.ControlEndpoint!, "/healthz")));
    }

    [Fact]
    public void FromConfigFile_InvalidConfiguration_ThrowsConfigurationExceptionWithEveryError()
    {
        var config = Path.Combine(_dir, "bad.json");
        File.WriteAllText(config, """{ "cluster": { "members": [] }, "node": { "memberId": 7 } }""");

        var ex = Assert.Throws<ConfigurationException>(() => ClusterNode.FromConfigFile(config));

        Assert.NotEmpty(ex.Errors);
        Assert.All(ex.Errors, e => Assert.Contains("bad.json", e, StringComparison.Ordinal));
    }
}
