namespace ClusterSync.Node.Tests.Configuration;

/// <summary>
/// Plugins are resolved by validation: a plugin the configuration names that is missing, refused by the catalog or
/// whose factory refuses its settings fails <see cref="NodeConfigLoader.Load(string)"/> at the setting that names it
/// (exit 2), never later when the host is built or started. The plugins are the repository's own, built from source.
/// </summary>
public sealed class PluginResolutionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-resolution-").FullName;
    private readonly Plugins _plugins = new();

    public void Dispose()
    {
        _plugins.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A one-member configuration using this test's plugin directory, with <paramref name="sections"/> replacing its own.</summary>
    private string Write(string sections)
    {
        var config = new JsonObject
        {
            ["cluster"] = JsonNode.Parse($$"""{ "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}}, "transportAddress": "nats://127.0.0.1:4222/cs" } ] }"""),
            ["node"] = JsonNode.Parse("""{ "memberId": 1, "control": { "port": 0 } }"""),
            ["dataPlane"] = JsonNode.Parse("""{ "source": "none" }"""),
            ["plugins"] = new JsonObject { ["directory"] = _plugins.Directory, ["hotReload"] = false },
        };
        foreach (var (name, value) in JsonNode.Parse(sections)!.AsObject())
        {
            config[name] = value?.DeepClone();
        }

        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    private static string Error(string path) => Assert.Single(Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path)).Errors);

    [Fact]
    public void Load_NamedClassifierNotInThePluginDirectory_ErrorAtPluginsClassifier()
    {
        var path = Write($$"""{ "plugins": { "directory": "{{Escape(_plugins.Directory)}}", "classifier": "port-protocol" } }""");

        Assert.Equal($"{path}: plugins.classifier: expected a loaded classifier plugin named 'port-protocol' in {_plugins.Directory} (or 'built-in'): no such plugin", Error(path));
    }

    [Fact]
    public void Load_ClassifierBuiltForAnotherContractVersion_ErrorNamesTheContract()
    {
        _plugins.With("tests/Plugins/TestClassifier.WrongContract");
        var path = Write($$"""{ "plugins": { "directory": "{{Escape(_plugins.Directory)}}", "classifier": "wrong-contract" } }""");

        var error = Error(path);

        Assert.StartsWith($"{path}: plugins.classifier: expected a loaded classifier plugin named 'wrong-contract'", error, StringComparison.Ordinal);
        Assert.Contains("refused: built for plugin contract version 99", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ClassifierFactoryRefusesItsSettings_ErrorAtItsSettings()
    {
        _plugins.With("plugins/Protocol.Ftp");
        var path = Write($$"""{ "plugins": { "directory": "{{Escape(_plugins.Directory)}}", "classifier": "ftp", "settings": { "ftp": { "class": "no-such-class" } } } }""");

        // A plain message: the file, the setting's path, the plugin's reason; no .NET exception type.
        Assert.Equal($"{path}: plugins.settings.ftp: the classifier plugin 'ftp' refused its settings: class: 'no-such-class' is not a configured service class", Error(path));
    }

    [Fact]
    public void Load_DataPlanePluginNotLoaded_ErrorAtDataPlanePlugin()
    {
        _plugins.With("plugins/Protocol.Ftp");
        var path = Write("""{ "dataPlane": { "source": "plugin", "plugin": "ftp" } }""");

        Assert.StartsWith($"{path}: dataPlane.plugin: no loaded data-plane plugin named 'ftp' in {_plugins.Directory}", Error(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_DataPlaneFactoryRefusesItsSettings_ErrorAtDataPlaneSettings()
    {
        _plugins.With("plugins/DataPlane.TraceReplay");
        var path = Write("""{ "dataPlane": { "source": "plugin", "plugin": "trace-replay", "settings": { "speed": 0 } } }""");

        Assert.StartsWith($"{path}: dataPlane.settings: the data-plane plugin 'trace-replay' refused its settings: speed: expected a factor", Error(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_TransportPluginMissing_ErrorAtClusterTransport()
    {
        var path = Write($$"""{ "cluster": { "insecure": true, "transport": "nats", "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "transportAddress": "nats://127.0.0.1:4222/cs" } ] } }""");

        Assert.Equal($"{path}: cluster.transport: no loaded transport plugin named 'nats' in {_plugins.Directory}", Error(path));
    }

    [Fact]
    public void Load_ErrorsElsewhere_PluginsNotResolvedUntilTheRestIsValid()
    {
        // Factories are handed settings only from a configuration valid otherwise: one error, not a plugin's too.
        var path = Write("""{ "node": { "memberId": 7 }, "dataPlane": { "source": "plugin", "plugin": "no-such-plane" } }""");

        Assert.StartsWith($"{path}: node.memberId: ", Error(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_DefaultClassifierNotDeployed_BuiltInRulesWithTheReason()
    {
        using var model = NodeConfigLoader.Load(Write("{}"));

        Assert.Null(model.Plugins.Classifier);
        Assert.Equal("no such plugin", model.Plugins.ClassifierUnavailable);
    }

    [Fact]
    public void Load_NamedPlugins_ResolvedIntoTheModel()
    {
        _plugins.With("plugins/Protocol.Ftp").With("tests/Plugins/TestDataPlane.Faulty");
        var path = Write($$"""
            {
              "plugins": { "directory": "{{Escape(_plugins.Directory)}}", "classifier": "ftp", "hotReload": false },
              "dataPlane": { "source": "plugin", "plugin": "faulty-plane", "settings": { "failAfter": 3 } }
            }
            """);

        using var model = NodeConfigLoader.Load(path);

        Assert.Equal(("ftp", "1.0.0"), (model.Plugins.Classifier?.Name, model.Plugins.Classifier?.Version));
        Assert.Equal(("faulty-plane", "faulty-source", "faulty-sink"), (model.Plugins.DataPlane?.Name, model.Plugins.DataPlane?.Source?.Name, model.Plugins.DataPlane?.Sink.Name));
    }

    [Fact]
    public async Task Build_ResolvedPlugins_TheHostUsesTheInstancesValidationCreated()
    {
        _plugins.With("plugins/Protocol.Ftp").With("tests/Plugins/TestDataPlane.Faulty");
        var path = Write($$"""
            {
              "plugins": { "directory": "{{Escape(_plugins.Directory)}}", "classifier": "ftp", "hotReload": false },
              "dataPlane": { "source": "plugin", "plugin": "faulty-plane" }
            }
            """);
        var model = NodeConfigLoader.Load(path);
        var sink = model.Plugins.DataPlane!.Sink;

        await using var host = NodeHost.Build(model, time: new FakeTimeProvider());

        Assert.Equal("ftp", host.Runtime.Engine.Catalog.ActivePlugin?.PluginName);
        Assert.Equal(new ClassifierState("ftp", "1.0.0", 0), host.Runtime.Plugins.State);
        Assert.Equal(("faulty-plane", sink.Name), (host.Runtime.DataPlanePlugin?.Name, host.Runtime.GetStatus().DataPlane.Plugin?.Sink));
        Assert.Null(model.Plugins.DataPlane);   // handed to the host's data plane, which owns it now
    }

    private static string Escape(string path) => path.Replace("\\", "\\\\", StringComparison.Ordinal);
}
