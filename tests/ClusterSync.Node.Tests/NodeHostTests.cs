using System.Diagnostics.CodeAnalysis;

namespace ClusterSync.Node.Tests;

/// <summary>
/// <see cref="NodeHost.Build"/> composes the node from the validated model: the clock it is given reaches the parts
/// that keep time, and the configured adaptive model is the one validation loaded (no second load after validation).
/// </summary>
public sealed class NodeHostTests : IDisposable
{
    private static readonly DateTimeOffset FakeNow = new(2040, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-nodehost-").FullName;
    private readonly IModelLoader? _loader = AdaptiveNodeConfig.ModelLoader;

    public void Dispose()
    {
        AdaptiveNodeConfig.ModelLoader = _loader;
        Directory.Delete(_dir, recursive: true);
    }

    private string Config(string adaptive)
    {
        File.WriteAllText(Path.Combine(_dir, "model.zip"), "a model");
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": 0 } },
              "dataPlane": { "source": "none" },
              "adaptive": {{adaptive}}
            }
            """);
        return path;
    }

    [Fact]
    public async Task Build_FakeTimeProvider_EpochAndModelTimestampFromThatClock()
    {
        var loader = new CountingLoader();
        AdaptiveNodeConfig.ModelLoader = loader;
        var loaded = NodeConfigLoader.Load(Config("""{ "enabled": true, "model": "model.zip" }"""));

        await using var host = NodeHost.Build(loaded, time: new FakeTimeProvider(FakeNow));

        Assert.Equal((ulong)FakeNow.ToUnixTimeMilliseconds(), host.Runtime.Engine.Epoch);
        var adaptive = host.Runtime.Adaptive!.GetAdaptive();
        Assert.NotNull(adaptive);
        Assert.Equal(FakeNow, adaptive.ModelLoadedAt);
    }

    [Fact]
    public async Task Build_ConfiguredModel_LoadedOnceByValidation()
    {
        var loader = new CountingLoader();
        AdaptiveNodeConfig.ModelLoader = loader;
        var loaded = NodeConfigLoader.Load(Config("""{ "enabled": true, "model": "model.zip" }"""));

        await using var host = NodeHost.Build(loaded);

        Assert.Equal(1, loader.Loads);
        Assert.Equal(CountingLoader.ModelName, host.Runtime.Adaptive!.GetAdaptive()?.Model);
        Assert.Equal(Path.Combine(_dir, "model.zip"), loaded.AdaptiveModel?.Path);
    }

    [Fact]
    public void Load_ModelThatDoesNotLoad_ErrorAtValidation()
    {
        AdaptiveNodeConfig.ModelLoader = new CountingLoader { Refuse = true };

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(Config("""{ "enabled": true, "model": "model.zip" }""")));

        Assert.Contains(ex.Errors, e => e.EndsWith(": adaptive.model: not a lifetime model", StringComparison.Ordinal));
    }

    private sealed class CountingLoader : IModelLoader
    {
        public const string ModelName = "counting-model";

        public int Loads { get; private set; }

        public bool Refuse { get; init; }

        public bool TryLoad(string path, [NotNullWhen(true)] out ILifetimePredictor? predictor, out string reason)
        {
            Loads++;
            predictor = Refuse ? null : new Predictor();
            reason = Refuse ? "not a lifetime model" : "";
            return !Refuse;
        }
    }

    private sealed class Predictor : ILifetimePredictor
    {
        public string Name => CountingLoader.ModelName;

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            probabilityLong = 0;
            return 0;
        }
    }
}
