using ClusterSync.Plugins;

namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>Real plugin assemblies, built by their own projects, loaded from disk.</summary>
public class PluginCatalogTests
{
    [Fact]
    public void Load_ShippedPlugins_LoadedWithNameKindVersion()
    {
        using var catalog = PluginCatalog.Load(PluginFiles.ShippedPluginDirectory);

        var byName = catalog.Plugins.ToDictionary(p => p.Name);
        Assert.Equal(("classifier", "1.0.0", PluginInfo.Loaded), (byName["port-protocol"].Kind, byName["port-protocol"].Version, byName["port-protocol"].Status));
        Assert.Equal(("protocol", "1.0.0", PluginInfo.Loaded), (byName["ftp"].Kind, byName["ftp"].Version, byName["ftp"].Status));
        Assert.True(catalog.TryGetClassifier("port-protocol", out var factory, out _));
        Assert.Equal("port-protocol", factory.Name);
        Assert.False(catalog.TryGetTransport("port-protocol", out _, out _));
        Assert.Equal(("dataplane", "1.0.0", PluginInfo.Loaded), (byName["trace-replay"].Kind, byName["trace-replay"].Version, byName["trace-replay"].Status));
        Assert.True(catalog.TryGetDataPlane("trace-replay", out var dataPlane, out _));
        Assert.Equal("trace-replay", dataPlane.Name);
    }

    [Fact]
    public void Load_WrongContractVersion_RefusedWithReason()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.WrongContract"), "WrongContract");
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");

        using var catalog = PluginCatalog.Load(files.Directory);

        var wrong = Assert.Single(catalog.Plugins, p => p.Name == "wrong-contract");
        Assert.Equal(PluginInfo.Refused, wrong.Status);
        Assert.Equal(99, wrong.ContractVersion);
        Assert.Contains($"built for plugin contract version 99, this host implements version {PluginContract.Version}", wrong.Reason, StringComparison.Ordinal);
        Assert.False(catalog.TryGetClassifier("wrong-contract", out _, out _));
        Assert.True(catalog.TryGetClassifier("test-classifier", out _, out var ok));
        Assert.Equal(PluginInfo.Loaded, ok.Status);
    }

    [Fact]
    public void Load_FolderWithoutPluginAssembly_RefusedWithReason()
    {
        using var files = new PluginFiles();
        Directory.CreateDirectory(Path.Combine(files.Directory, "Empty"));
        var notAPlugin = Path.Combine(files.Directory, "Garbage");
        Directory.CreateDirectory(notAPlugin);
        File.WriteAllText(Path.Combine(notAPlugin, "Garbage.dll"), "not an assembly");

        using var catalog = PluginCatalog.Load(files.Directory);

        var empty = Assert.Single(catalog.Plugins, p => p.Name == "Empty");
        Assert.Equal(PluginInfo.Refused, empty.Status);
        Assert.Contains("no Empty.dll", empty.Reason, StringComparison.Ordinal);
        var garbage = Assert.Single(catalog.Plugins, p => p.Name == "Garbage");
        Assert.Equal(PluginInfo.Refused, garbage.Status);
        Assert.Contains("cannot load", garbage.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_DisabledByConfiguration_ListedAsDisabled()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");

        using var catalog = PluginCatalog.Load(files.Directory, disabled: ["test-classifier"]);

        var p = Assert.Single(catalog.Plugins);
        Assert.Equal(PluginInfo.Disabled, p.Status);
        Assert.False(catalog.TryGetClassifier("test-classifier", out _, out _));
    }

    [Fact]
    public void Load_TemplateProjectBuilt_LoadsAndClassifiesFromItsSettings()
    {
        using var files = new PluginFiles();
        files.Drop(Path.Combine(PluginFiles.RepoRoot, "templates", "ClassifierPlugin", "bin", PluginFiles.ConfigurationName, "net10.0"), "Acme.ClassifierPlugin");

        using var catalog = PluginCatalog.Load(files.Directory);

        Assert.True(catalog.TryGetClassifier("acme", out var factory, out var info), string.Join("; ", catalog.Plugins.Select(p => $"{p.Name}: {p.Reason}")));
        Assert.Equal(("classifier", "1.0.0"), (info.Kind, info.Version));
        var settings = JsonDocument.Parse("""{ "ports": { "8443": "mission-critical" } }""").RootElement.Clone();
        var classifier = factory.Create(new Classification.ClassifierContext(["mission-critical", "default"], "default", [], settings));
        Assert.Equal("mission-critical", classifier.Classify(Connections.ConnectionKey.IPv4(1, 2, 40000, 8443, 6)));
        Assert.Null(classifier.Classify(Connections.ConnectionKey.IPv4(1, 2, 40000, 80, 6)));
        var bad = JsonDocument.Parse("""{ "ports": { "8443": "gold" } }""").RootElement.Clone();
        Assert.Throws<ArgumentException>(() => factory.Create(new Classification.ClassifierContext(["default"], "default", [], bad)));
    }

    [Fact]
    public void PluginsCommand_Json_PrintsOneObjectPerPluginFound()
    {
        using var files = new PluginFiles();
        files.Drop(Path.Combine(PluginFiles.ShippedPluginDirectory, "Classifier.PortProtocol"), "Classifier.PortProtocol");
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.WrongContract"), "WrongContract");
        using var output = new StringWriter();

        int exit = PluginsCommand.Run(files.Directory, json: true, output);

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        var items = doc.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
        Assert.Equal(2, items.Count);
        Assert.Equal("classifier", items["port-protocol"].GetProperty("kind").GetString());
        Assert.Equal("1.0.0", items["port-protocol"].GetProperty("version").GetString());
        Assert.Equal("loaded", items["port-protocol"].GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, items["port-protocol"].GetProperty("reason").ValueKind);
        Assert.Equal("refused", items["wrong-contract"].GetProperty("status").GetString());
        Assert.Contains("contract version 99", items["wrong-contract"].GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void PluginsCommand_Table_ListsStatusAndReason()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.WrongContract"), "WrongContract");
        using var output = new StringWriter();

        PluginsCommand.Run(files.Directory, json: false, output);

        var text = output.ToString();
        Assert.Contains("1 found, 0 loaded, 1 refused", text, StringComparison.Ordinal);
        Assert.Contains("wrong-contract", text, StringComparison.Ordinal);
        Assert.Contains("contract version 99", text, StringComparison.Ordinal);
    }
}
