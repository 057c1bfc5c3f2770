using ClusterSync.Cli;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Bad node configurations: <c>clustersync node --config FILE</c> run in-process exits 2 before anything starts, and the
/// message names the file and the field. (One class: the tests swap Console.Error, so they must not run in parallel.)
/// </summary>
public sealed class NodeConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonObject ValidConfig() => JsonNode.Parse("""
        {
          "cluster": {
            "insecure": true,
            "members": [
              { "id": 1, "address": "127.0.0.1:18116", "priority": 100, "fullSyncPort": 18256 },
              { "id": 2, "address": "127.0.0.1:18117", "priority": 90, "fullSyncPort": 18257 }
            ]
          },
          "node": { "memberId": 1, "control": { "port": 19116 } },
          "sync": { "mtu": 1400, "ackInterval": "5ms" },
          "policy": {
            "classes": [ { "name": "default", "policy": "full" } ],
            "rules": [ { "protocol": "tcp", "ports": "443", "class": "default" } ]
          },
          "dataPlane": { "source": "none" }
        }
        """)!.AsObject();

    public static TheoryData<string, string, string> BadConfigurations() => new()
    {
        { "missing key file", """{"cluster": {"insecure": false, "keyFile": "nope.key"}}""", "cluster.keyFile: " },
        { "no key file and insecure not set", """{"cluster": {"insecure": false}}""", "cluster.keyFile: " },
        { "unknown member", """{"node": {"memberId": 7}}""", "node.memberId: 7 is not" },
        { "duplicate port", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256}, {"id": 2, "address": "127.0.0.1:18116", "fullSyncPort": 18257}]}}""", "cluster.members[1].address: duplicate" },
        { "control port equal to a sync port", """{"node": {"control": {"port": 18117}}}""", "node.control.port: 18117" },
        { "bad address", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116"}, {"id": 2, "address": "not-an-ip"}]}}""", "cluster.members[1].address: expected an IP address" },
        { "duplicate member id", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116"}, {"id": 1, "address": "127.0.0.1:18117"}]}}""", "cluster.members[1].id: duplicate" },
        { "member id out of range", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116"}, {"id": 300, "address": "127.0.0.1:18117"}]}}""", "cluster.members[1].id: expected a member id" },
        { "unknown policy class in a rule", """{"policy": {"rules": [{"protocol": "tcp", "ports": "80", "class": "gold"}]}}""", "policy.rules[0].class: 'gold'" },
        { "bad policy", """{"policy": {"classes": [{"name": "default", "policy": "sometimes"}]}}""", "policy.classes[0].policy: expected" },
        { "bad duration", """{"sync": {"ackInterval": "soon"}}""", "sync.ackInterval: expected a duration" },
        { "engine knob out of range", """{"sync": {"mtu": 100}}""", "sync.mtu: expected 256 to 65507" },
        { "unknown setting", """{"sync": {"mtuu": 1400}}""", "sync.mtuu: unknown setting" },
        { "wrong JSON type", """{"node": {"memberId": "one"}}""", "node.memberId: " },
        { "null section", """{"node": null}""", "node: expected a value" },
        { "unknown data-plane source", """{"dataPlane": {"source": "pcap"}}""", "dataPlane.source: expected 'generator', 'api', 'feed', 'plugin' or 'none'" },
        { "plugin commit timeout out of range", """{"dataPlane": {"source": "plugin", "plugin": "conntrack", "commitTimeoutSeconds": 0}}""", "dataPlane.commitTimeoutSeconds: expected 1 to 3600, found 0" },
        { "feed source without a port", """{"dataPlane": {"source": "feed"}}""", "dataPlane.feedPort: expected a TCP port" },
        { "data-plane plugin without source plugin", """{"dataPlane": {"source": "none", "plugin": "trace-replay"}}""", "dataPlane.plugin: only used with source 'plugin', found source 'none'" },
        { "bad generator rate", """{"dataPlane": {"source": "generator", "generator": {"changesPerSecond": 0}}}""", "dataPlane.generator.changesPerSecond" },
        { "unknown cluster mode", """{"cluster": {"mode": "active-active"}}""", "cluster.mode: expected 'high-availability' or 'load-sharing'" },
        { "full sync port out of range", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 70000}, {"id": 2, "address": "127.0.0.1:18117"}]}}""", "cluster.members[0].fullSyncPort: expected a TCP port" },
        { "full sync port equal to a sync port", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18117}, {"id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18256}]}}""", "cluster.members[0].fullSyncPort: 18117 is also the sync port" },
        { "duplicate full sync endpoint", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256}, {"id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18256}]}}""", "cluster.members[1].fullSyncPort: 127.0.0.1:18256 is also the full sync endpoint" },
        { "control port equal to the full sync port", """{"cluster": {"members": [{"id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 19116}, {"id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18257}]}}""", "node.control.port: 19116 is also the full sync port" },
        { "insecure and a key file", """{"cluster": {"insecure": true, "keyFile": "cluster.key"}}""", "cluster.insecure: " },
        { "adaptive never-skip class unknown", """{"adaptive": {"enabled": true, "neverSkip": ["gold"]}}""", "adaptive.neverSkip[0]: 'gold' is not one of policy.classes" },
        { "adaptive loss budget not positive", """{"adaptive": {"enabled": true, "lossBudget": 0}}""", "adaptive.lossBudget: expected" },
        { "adaptive model file missing", """{"adaptive": {"enabled": true, "model": "nope.zip"}}""", "adaptive.model: " },
        { "aloneAfter shorter than three dead intervals", """{"cluster": {"aloneAfter": "100ms"}}""", "cluster.aloneAfter: expected a duration from three dead intervals (900 ms" },
        { "aloneAfter longer than an hour", """{"cluster": {"aloneAfter": "2h"}}""", "cluster.aloneAfter: expected a duration from three dead intervals (900 ms: sync.heartbeatInterval × sync.deadAfterMissedHeartbeats × 3) up to 1h, found 7200s" },
        { "aloneAfter not a duration", """{"cluster": {"aloneAfter": 10}}""", "cluster.aloneAfter: expected a duration" },
        { "state directory missing", """{"node": {"stateDirectory": "no-such-dir"}}""", "node.stateDirectory: " },
        { "state directory empty", """{"node": {"stateDirectory": " "}}""", "node.stateDirectory: expected the path of a directory" },
        { "telemetry sample rate above one", """{"telemetry": {"enabled": true, "sampleRate": 1.5}}""", "telemetry.sampleRate: expected a share in (0, 1]" },
    };

    [Theory]
    [MemberData(nameof(BadConfigurations))]
    public async Task Node_BadConfiguration_ExitsTwoAndNamesTheField(string scenario, string patch, string expected)
    {
        var config = ValidConfig();
        Merge(config, JsonNode.Parse(patch)!.AsObject());
        var path = Write(config.ToJsonString());

        var (code, error) = await RunNodeAsync(path);

        Assert.True(code == CommandLine.BadInput, $"{scenario}: exit {code}, stderr: {error}");
        Assert.Contains(path, error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_MalformedJson_ExitsTwoWithFileLineAndPosition()
    {
        var path = Write("{\n  \"cluster\": {\n    \"members\": [ , ]\n  }\n}\n");

        var (code, error) = await RunNodeAsync(path);

        Assert.Equal(CommandLine.BadInput, code);
        Assert.Contains($"{path}: malformed JSON at line 3, position", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_MissingConfigurationFile_ExitsTwo()
    {
        var path = Path.Combine(_dir, "absent.json");

        var (code, error) = await RunNodeAsync(path);

        Assert.Equal(CommandLine.BadInput, code);
        Assert.Contains(path, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_SeveralErrors_ReportsEveryOneWithItsPath()
    {
        var config = ValidConfig();
        Merge(config, JsonNode.Parse("""
            {"cluster": {"insecure": false, "members": [{"id": 1, "address": "127.0.0.1:18116"}, {"id": 2, "address": "10.0.0.300:1"}]},
             "node": {"memberId": 9}, "sync": {"mtu": 70000, "bogus": 1}, "policy": {"rules": [{"protocol": "xtp", "class": "gold"}]}}
            """)!.AsObject());
        var path = Write(config.ToJsonString());

        var (code, error) = await RunNodeAsync(path);

        Assert.Equal(CommandLine.BadInput, code);
        foreach (var field in new[] { "cluster.keyFile:", "cluster.members[1].address:", "node.memberId:", "sync.mtu:", "sync.bogus:", "policy.rules[0].protocol:", "policy.rules[0].class:" })
        {
            Assert.Contains($"{path}: {field}", error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Load_ValidConfiguration_MapsToEngineOptionsWithDefaults()
    {
        var config = ValidConfig();
        Merge(config, JsonNode.Parse("""{"node": {"memberId": 2}, "sync": {"heartbeatInterval": "250ms", "tombstoneTtl": "1m"}}""")!.AsObject());
        var loaded = NodeConfigLoader.Load(Write(config.ToJsonString()));

        Assert.Equal(2, loaded.EngineOptions.MemberId);
        Assert.Equal([(byte)1], loaded.EngineOptions.PeerMemberIds);
        Assert.Equal("127.0.0.1:18117", loaded.LocalEndPoint.ToString());
        Assert.Equal("127.0.0.1:18116", Assert.Single(loaded.PeerEndPoints).ToString());
        Assert.Equal(TimeSpan.FromMilliseconds(250), loaded.EngineOptions.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMinutes(1), loaded.EngineOptions.TombstoneTtl);
        Assert.Equal(new Engine.SyncEngineOptions().ResendBufferDatagrams, loaded.EngineOptions.ResendBufferDatagrams);
        Assert.True(loaded.EngineOptions.Insecure);
        Assert.Null(loaded.Key);
        Assert.Equal(ClusterSync.Membership.ClusterMode.HighAvailability, loaded.Mode);
        Assert.False(loaded.Config.Cluster.Preemption);
        Assert.Equal("127.0.0.1:18257", loaded.FullSyncEndPoint.ToString());
        Assert.Equal("127.0.0.1:18256", Assert.Single(loaded.PeerFullSyncEndPoints).ToString());
        Assert.Equal(ClusterSync.Membership.JoinPlanner.DefaultAloneAfter, loaded.Config.Cluster.AloneAfter);
        Assert.Equal(Path.Combine(_dir, "clustersync-member2.epoch"), loaded.EpochFilePath); // next to the configuration
    }

    [Fact]
    public void Load_AloneAfterAndStateDirectory_AreTaken()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "state"));
        var config = ValidConfig();
        Merge(config, JsonNode.Parse("""{"cluster": {"aloneAfter": "1.5s"}, "node": {"stateDirectory": "state"}}""")!.AsObject());
        var loaded = NodeConfigLoader.Load(Write(config.ToJsonString()));

        Assert.Equal(TimeSpan.FromMilliseconds(1500), loaded.Config.Cluster.AloneAfter);
        Assert.Equal(Path.Combine(_dir, "state", "clustersync-member1.epoch"), loaded.EpochFilePath);
    }

    [Fact]
    public void Load_ExampleFiles_AreValid()
    {
        var examples = Path.Combine(CliProcess.RepositoryRoot(), "examples");
        File.Copy(Path.Combine(examples, "node1.json"), Path.Combine(_dir, "node1.json"));
        File.Copy(Path.Combine(examples, "node2.json"), Path.Combine(_dir, "node2.json"));
        Cli.Commands.KeygenCommand.Write(Path.Combine(_dir, "cluster.key"), Security.ClusterKey.Generate());

        var first = NodeConfigLoader.Load(Path.Combine(_dir, "node1.json"));
        var second = NodeConfigLoader.Load(Path.Combine(_dir, "node2.json"));

        Assert.NotNull(first.Key);
        Assert.Equal(second.EngineOptions.Mtu, first.EngineOptions.Mtu);
        Assert.Equal(second.EngineOptions.AckInterval, first.EngineOptions.AckInterval);
        Assert.Equal(second.EngineOptions.TombstoneTtl, first.EngineOptions.TombstoneTtl);
        Assert.Equal(second.EngineOptions.ResendBufferDatagrams, first.EngineOptions.ResendBufferDatagrams);
        Assert.Equal(second.EngineOptions.Policy.Rules, first.EngineOptions.Policy.Rules);
        Assert.Equal(second.EngineOptions.Policy.Classes, first.EngineOptions.Policy.Classes);
    }

    private string Write(string json)
    {
        var path = Path.Combine(_dir, $"node-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static async Task<(int Code, string Error)> RunNodeAsync(string path)
    {
        var previous = Console.Error;
        var error = new StringWriter();
        Console.SetError(error);
        try
        {
            var run = CommandLine.RunAsync(["node", "--config", path]);
            var code = await run.WaitAsync(TimeSpan.FromSeconds(30));
            return (code, error.ToString());
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    /// <summary>Deep merge: objects merge key by key, anything else replaces.</summary>
    private static void Merge(JsonObject target, JsonObject patch)
    {
        foreach (var (name, value) in patch.ToList())
        {
            if (value is JsonObject child && target[name] is JsonObject existing)
            {
                Merge(existing, child);
            }
            else
            {
                target[name] = value?.DeepClone();
            }
        }
    }
}
