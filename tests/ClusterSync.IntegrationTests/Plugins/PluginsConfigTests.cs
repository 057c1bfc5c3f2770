namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>The node configuration's <c>plugins</c> section: validated with the rest, each error with its path.</summary>
public sealed class PluginsConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-plugins-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string plugins)
    {
        var config = JsonNode.Parse("""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 }, { "id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18257 } ] },
              "node": { "memberId": 1, "control": { "port": 19116 } }
            }
            """)!.AsObject();
        config["plugins"] = JsonNode.Parse(plugins);
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    [Fact]
    public void Load_PluginsSection_ReadsSettingsAndResolvesDirectoryAgainstTheFile()
    {
        var path = Write("""{ "directory": "my-plugins", "classifier": "ftp", "classifierTimeout": "50ms", "maxFailures": 3, "hotReload": false, "settings": { "ftp": { "class": "mission-critical", "controlPorts": [21, 2121] } } }""");
        // A classifier named in the configuration is resolved by validation: it must be deployed in plugins.directory.
        var ftp = Directory.CreateDirectory(Path.Combine(_dir, "my-plugins", "Protocol.Ftp")).FullName;
        foreach (var file in Directory.GetFiles(Path.Combine(PluginFiles.ShippedPluginDirectory, "Protocol.Ftp")))
        {
            File.Copy(file, Path.Combine(ftp, Path.GetFileName(file)));
        }

        using var loaded = NodeConfigLoader.Load(path);

        var p = loaded.Config.Plugins;
        Assert.Equal(("ftp", TimeSpan.FromMilliseconds(50), 3, false), (p.Classifier, p.ClassifierTimeout, p.MaxFailures, p.HotReload));
        Assert.Equal(2121, p.Settings["ftp"].GetProperty("controlPorts")[1].GetInt32());
        Assert.Equal(Path.Combine(_dir, "my-plugins"), p.ResolveDirectory(path));
    }

    [Fact]
    public void Load_DefaultPluginsSection_UsesPortProtocolPluginNextToTheBinary()
    {
        var loaded = NodeConfigLoader.Load(Write("{}"));

        Assert.Equal(PluginsConfig.DefaultClassifier, loaded.Config.Plugins.Classifier);
        Assert.Equal(PluginCatalog.DefaultDirectory, loaded.Config.Plugins.ResolveDirectory(null));
    }

    [Fact]
    public void Load_BadPluginsSection_ReportsEveryErrorWithItsPath()
    {
        var path = Write("""{ "classifier": "", "classifierTimeout": "0ms", "maxFailures": 0, "bogus": 1 }""");

        var ex = Assert.Throws<ClusterSync.ConfigurationException>(() => NodeConfigLoader.Load(path));

        var all = string.Join("\n", ex.Errors);
        Assert.Contains("plugins.classifier: expected a classifier plugin name", all, StringComparison.Ordinal);
        Assert.Contains("plugins.classifierTimeout: expected a duration from 1ms to 1m", all, StringComparison.Ordinal);
        Assert.Contains("plugins.maxFailures: expected 1 to 1000000, found 0", all, StringComparison.Ordinal);
        Assert.Contains("plugins.bogus: unknown setting", all, StringComparison.Ordinal);
        Assert.All(ex.Errors, e => Assert.StartsWith(path, e, StringComparison.Ordinal));
    }
}
