namespace ClusterSync.IntegrationTests.Node;

/// <summary><c>clustersync status --token-file</c> against a node whose reads need the control token (in-process).</summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class StatusTokenTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-status-token-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Status_NodeRequiresTokenForReads_FailsWithoutTokenSucceedsWithTokenFile()
    {
        var tokenFile = Path.Combine(_dir, "control.token");
        ControlTokenFile.Write(tokenFile);
        int control = Ports.FreeTcp();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{control}}, "tokenFile": "control.token", "requireTokenForReads": true } }
            }
            """);
        await using var node = ClusterNode.FromConfigFile(config);
        await node.StartAsync();
        var endpoint = $"http://127.0.0.1:{control}";

        using var without = new StringWriter();
        int refused = await StatusCommand.RunAsync(endpoint, json: true, 10, without, CancellationToken.None);
        using var with = new StringWriter();
        int answered = await StatusCommand.RunAsync(endpoint, json: true, 10, with, CancellationToken.None, tokenFile);

        Assert.Equal(1, refused);
        Assert.Equal("", without.ToString());
        Assert.Equal(0, answered);
        Assert.Contains("\"memberId\": 1", with.ToString(), StringComparison.Ordinal);
    }
}
