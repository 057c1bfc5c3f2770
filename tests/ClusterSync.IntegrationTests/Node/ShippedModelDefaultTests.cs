namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// <c>adaptive.enabled</c> without <c>adaptive.model</c>: the node's adaptive mode (in-process, a real engine on a real
/// UDP socket) loads the shipped model copied next to the binary, and falls back to cold start with the reason when
/// that file is missing.
/// </summary>
public sealed class ShippedModelDefaultTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-shipped-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Create_AdaptiveWithoutModel_LoadsTheShippedModelBesideTheBinary()
    {
        var shipped = AdaptiveNodeConfig.ShippedModelPath;
        Assert.True(File.Exists(shipped), $"the build did not copy the shipped model to {shipped}");

        var a = Adaptive(shipped, "");

        Assert.Equal("model", a.Mode);
        Assert.Equal("lifetime", a.Model);
        Assert.Equal("shipped", a.ModelSource);
        Assert.Equal(shipped, a.ModelPath);
        Assert.False(string.IsNullOrEmpty(a.ModelTrainedAt));
        Assert.Null(a.ColdStartReason);
    }

    [Fact]
    public void Create_ShippedModelMissing_ColdStartWithTheReason()
    {
        var missing = Path.Combine(_dir, "models", "lifetime.zip");

        var a = Adaptive(missing, "");

        Assert.Equal("cold-start", a.Mode);
        Assert.Null(a.Model);
        Assert.Null(a.ModelSource);
        Assert.Contains(missing, a.ColdStartReason, StringComparison.Ordinal);
        Assert.Contains("missing", a.ColdStartReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_ModelNone_ColdStartEvenWithTheShippedModelPresent()
    {
        var a = Adaptive(AdaptiveNodeConfig.ShippedModelPath, "\"model\": \"none\",");

        Assert.Equal("cold-start", a.Mode);
        Assert.Null(a.Model);
        Assert.Null(a.ColdStartReason);
    }

    private AdaptiveDocument Adaptive(string shippedPath, string modelSetting)
    {
        int sync = Ports.FreeUdp();
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{sync}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{Ports.FreeTcp()}} } },
              "adaptive": { {{modelSetting}} "enabled": true }
            }
            """);
        var config = NodeConfigLoader.Load(path);
        using var channel = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var engine = new SyncEngine(config.EngineOptions, channel, null);
        using var node = AdaptiveNode.Create(config, engine, null, TimeProvider.System, shippedPath);
        return node.GetAdaptive() ?? throw new InvalidOperationException("adaptive mode is off");
    }
}
