namespace ClusterSync.Node.Tests.Configuration;

/// <summary>
/// The section validators behind <see cref="NodeConfigLoader"/>: each collects every error of its section with its
/// JSON path, and the loader throws them all at once, one per line, each prefixed with the configuration file.
/// </summary>
public sealed class NodeConfigValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-validation-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The members of the valid configuration (two members on loopback).</summary>
    private const string Members = """
        [ { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 }, { "id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18257 } ]
        """;

    private static readonly Dictionary<string, string> s_validSections = new(StringComparer.Ordinal)
    {
        ["cluster"] = $$"""{ "insecure": true, "members": {{Members}} }""",
        ["node"] = """{ "memberId": 1, "control": { "port": 19116 } }""",
        ["dataPlane"] = """{ "source": "none" }""",
    };

    /// <summary>Writes the valid configuration with the sections of <paramref name="sections"/> (a JSON object) replacing its own whole.</summary>
    private string Write(string sections)
    {
        var config = new JsonObject();
        foreach (var (name, json) in s_validSections)
        {
            config[name] = JsonNode.Parse(json);
        }

        foreach (var (name, value) in JsonNode.Parse(sections)!.AsObject())
        {
            config[name] = value?.DeepClone();
        }

        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    [Fact]
    public void Load_ValidConfiguration_BuildsTheModel()
    {
        var loaded = NodeConfigLoader.Load(Write("{}"));

        Assert.Equal(1, loaded.Self.Id);
        Assert.Equal("127.0.0.1:18117", Assert.Single(loaded.PeerEndPoints).ToString());
        Assert.Equal(PluginsConfig.DefaultDirectory, loaded.PluginDirectory);
        Assert.Null(loaded.AdaptiveModel);
    }

    [Fact]
    public void Load_ErrorsInEverySection_ReportsEachWithItsPathAtOnce()
    {
        var path = Write("""
            {
              "cluster": {
                "insecure": true,
                "mode": "active-active",
                "members": [
                  { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 },
                  { "id": 2, "address": "not-an-ip", "fullSyncPort": 18257 }
                ]
              },
              "node": { "memberId": 1, "control": { "port": 70000 } },
              "sync": { "socketBufferBytes": 1 },
              "dataPlane": { "source": "generator", "generator": { "ipv6Share": 2, "connections": 0 } },
              "plugins": { "classifier": "" },
              "adaptive": { "enabled": true, "lossBudget": 0 },
              "telemetry": { "enabled": true, "sampleRate": 1.5 }
            }
            """);

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        string[] expected =
        [
            "cluster.mode: ", "cluster.members[1].address: ", "node.control.port: ", "sync.socketBufferBytes: ",
            "dataPlane.generator.ipv6Share: ", "dataPlane.generator.connections: ", "plugins.classifier: ",
            "adaptive.lossBudget: ", "telemetry.sampleRate: ",
        ];
        Assert.Equal(expected.Length, ex.Errors.Count);
        Assert.All(ex.Errors, e => Assert.StartsWith(path + ": ", e, StringComparison.Ordinal));
        foreach (var field in expected)
        {
            Assert.Contains(ex.Errors, e => e.StartsWith($"{path}: {field}", StringComparison.Ordinal));
        }

        Assert.Equal(string.Join(Environment.NewLine, ex.Errors), ex.Message);
    }

    public static TheoryData<string, string, string> OneErrorPerSection() => new()
    {
        { "cluster", $$"""{"cluster": {"insecure": true, "transport": " ", "members": {{Members}} } }""", "cluster.transport: expected 'udp' or the name of a transport plugin" },
        { "members", """{"cluster": {"insecure": true, "members": [{"id": 1, "links": [{"id": 0, "address": "127.0.0.1:18116"}, {"id": 0, "address": "127.0.0.1:18118"}]}, {"id": 2, "address": "127.0.0.1:18117"}]}}""", "cluster.members[0].links[1].id: duplicate sync link id 0" },
        { "links", """{"cluster": {"insecure": true, "members": [{"id": 1, "address": "0.0.0.0:18116"}, {"id": 2, "address": "127.0.0.1:18117"}]}}""", "cluster.members[0].address: expected an address the other members can send to" },
        { "node", """{"node": {"memberId": 1, "control": {"requireTokenForReads": true}}}""", "node.control.requireTokenForReads: 'true' needs node.control.tokenFile" },
        { "sync", """{"sync": {"socketBufferBytes": 1}}""", "sync.socketBufferBytes: expected 65536 to 1073741824, found 1" },
        { "policy", """{"policy": {"classes": [{"name": "default", "policy": "sometimes"}]}}""", "policy.classes[0].policy: expected" },
        { "dataPlane", """{"dataPlane": {"source": "plugin", "commitTimeoutSeconds": 0}}""", "dataPlane.plugin: expected the name of a data-plane plugin" },
        { "plugins", """{"plugins": {"disabled": [" "]}}""", "plugins.disabled[0]: expected a plugin name, found an empty name" },
        { "adaptive", """{"adaptive": {"enabled": true, "neverSkip": ["gold"]}}""", "adaptive.neverSkip[0]: 'gold' is not one of policy.classes" },
        { "telemetry", """{"telemetry": {"enabled": true, "sampleRate": 0}}""", "telemetry.sampleRate: expected a share in (0, 1]" },
        { "hooks", """{"hooks": {"onActive": ["missing-hook.sh"]}}""", "hooks.onActive[0]: expected an executable file (absolute, or relative to the configuration file), found no file at" },
    };

    [Theory]
    [MemberData(nameof(OneErrorPerSection))]
    public void Load_BadSection_ErrorNamesFileAndPath(string section, string patch, string expected)
    {
        var path = Write(patch);

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        Assert.True(ex.Errors.Any(e => e.StartsWith($"{path}: {expected}", StringComparison.Ordinal)),
            $"section {section}: expected '{expected}' among:\n{string.Join("\n", ex.Errors)}");
    }

    [Fact]
    public void Load_PluginSourceWithoutNameAndBadTimeout_ReportsBoth()
    {
        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(Write("""{"dataPlane": {"source": "plugin", "commitTimeoutSeconds": 0}}""")));

        Assert.Equal(2, ex.Errors.Count);
        Assert.Contains(ex.Errors, e => e.Contains(": dataPlane.plugin: ", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Contains(": dataPlane.commitTimeoutSeconds: expected 1 to 3600, found 0", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_RelativePluginDirectory_ResolvedAgainstTheConfigurationFile()
    {
        var loaded = NodeConfigLoader.Load(Write("""{"plugins": {"directory": "my-plugins"}}"""));

        Assert.Equal(Path.Combine(_dir, "my-plugins"), loaded.PluginDirectory);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Load_BadHooks_ReportsEveryErrorWithItsPath_RelativeExecutableResolvedAgainstTheFile()
    {
        File.WriteAllText(Path.Combine(_dir, "not-executable.sh"), "#!/bin/sh\n");
        File.WriteAllText(Path.Combine(_dir, "ok.sh"), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(_dir, "ok.sh"), UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(Write("""
            {"hooks": {"onActive": ["ok.sh", "{state}"], "onStandby": ["not-executable.sh"], "timeout": "20m",
              "virtualAddresses": [{"address": "10.0.0.300/24", "interface": "eth0"}, {"address": "10.0.0.1/24", "interface": "a/b"},
                                   {"address": "fd00::1/129", "interface": "eth0"}, {"address": "10.0.0.1/16", "interface": "eth1"}]}}
            """)));

        Assert.Equal(
        new[]
        {
            "hooks.onStandby[0]: expected an executable file, found " + Path.Combine(_dir, "not-executable.sh") + " without execute permission (chmod +x)",
            "hooks.timeout: expected a duration from 100ms to 10m, found 00:20:00",
            "hooks.virtualAddresses[0].address: expected an address with its prefix length, like 10.0.0.100/24 or fd00::100/64, found '10.0.0.300/24'",
            "hooks.virtualAddresses[1].interface: expected a network interface name (1 to 15 characters, no '/', ':' or space), found 'a/b'",
            "hooks.virtualAddresses[2].address: expected an address with its prefix length, like 10.0.0.100/24 or fd00::100/64, found 'fd00::1/129'",
            "hooks.virtualAddresses[3].address: expected each address once, found 10.0.0.1 again",
        }, ex.Errors.Select(e => e[(Path.Combine(_dir, "node.json").Length + 2)..]).ToArray());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Load_Hooks_ValidSectionLoads()
    {
        File.WriteAllText(Path.Combine(_dir, "ok.sh"), "#!/bin/sh\n");
        File.SetUnixFileMode(Path.Combine(_dir, "ok.sh"), UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var loaded = NodeConfigLoader.Load(Write("""{"hooks": {"onActive": ["ok.sh"], "timeout": "2s", "virtualAddresses": [{"address": "fd00::1/64", "interface": "eth0"}]}}"""));

        Assert.Equal(TimeSpan.FromSeconds(2), loaded.Config.Hooks.Timeout);
        Assert.Equal(Path.Combine(_dir, "ok.sh"), HooksConfig.ResolveExecutable(loaded.Path, loaded.Config.Hooks.OnActive[0]));
    }

    [Fact]
    public void Load_ClassTemplates_ValidBlockLoadsAndEachBadFieldIsNamed()
    {
        var loaded = NodeConfigLoader.Load(Write("""{"policy": {"rules": [], "classes": [{"name": "default", "policy": "delayed", "delaySeconds": 3, "templates": {"threshold": 5, "lifetimeSeconds": 30}}]}}"""));
        var t = Assert.Single(loaded.Config.Policy.Classes).Templates;
        Assert.Equal(new ClusterSync.Policy.TemplateOptions { Threshold = 5, LifetimeSeconds = 30 }, t);

        var path = Write("""{"policy": {"classes": [{"name": "default", "templates": {"threshold": 1, "windowSeconds": 0, "lifetimeSeconds": 90000}}]}}""");
        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        Assert.Contains($"{path}: policy.classes[0].templates.threshold: expected a number of connections in [2, 1000000], found 1", ex.Errors);
        Assert.Contains($"{path}: policy.classes[0].templates.windowSeconds: expected a number of seconds in (0, 3600], found 0", ex.Errors);
        Assert.Contains($"{path}: policy.classes[0].templates.lifetimeSeconds: expected a number of seconds in [1, 86400], found 90000", ex.Errors);
    }

    [Fact]
    public void Load_ClassTemplatesWithAnUnknownField_Refused()
    {
        var path = Write("""{"policy": {"classes": [{"name": "default", "templates": {"treshold": 5}}]}}""");

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        Assert.Contains(ex.Errors, e => e.StartsWith(path, StringComparison.Ordinal) && e.Contains("treshold", StringComparison.Ordinal));
    }
}
