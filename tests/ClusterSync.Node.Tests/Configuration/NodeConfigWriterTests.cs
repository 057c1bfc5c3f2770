using System.Text.Json;
using ClusterSync.Policy;
using ClusterSync.Telemetry;

namespace ClusterSync.Node.Tests.Configuration;

/// <summary><see cref="NodeConfigWriter"/>: what it writes, the loader reads back to the same configuration.</summary>
public sealed class NodeConfigWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-configwriter-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Write_EverySectionSet_LoadsBackToAnEqualConfiguration()
    {
        ControlTokenFile.Write(Path.Combine(_dir, "control.token"));
        var config = new NodeConfig
        {
            Cluster = new ClusterConfig
            {
                Insecure = true,
                Mode = ClusterConfig.ModeLoadSharing,
                Preemption = true,
                AloneAfter = TimeSpan.FromSeconds(2),
                Members = NodeConfigWriter.HostMembers([Ports.FreeUdp(), Ports.FreeUdp()], [Ports.FreeTcp(), Ports.FreeTcp()]),
            },
            Node = new NodeSection { MemberId = 2, Control = new ControlConfig { Port = Ports.FreeTcp(), TokenFile = "control.token" } },
            Sync = new SyncConfig { TableCapacity = 4096, HeartbeatInterval = TimeSpan.FromMilliseconds(150), AntiEntropySettle = TimeSpan.FromMilliseconds(1.5) },
            Policy = new PolicyOptions { Classes = [new ServiceClassOptions { Name = "default", Policy = "delayed", DelaySeconds = 2.5 }], Rules = [] },
            DataPlane = new DataPlaneConfig
            {
                Source = DataPlaneConfig.SourceGenerator,
                Generator = new GeneratorConfig { Seed = 9, Connections = 100, ChangesPerSecond = 12.5, Paused = true, SourceBase = "10.2.0.0" },
            },
            Adaptive = new AdaptiveOptions { Enabled = true, Model = "none", FeedbackInterval = TimeSpan.FromMilliseconds(200), NeverSkip = ["default"] },
            Telemetry = new TelemetryOptions { Enabled = true, Path = "t.db", FlushInterval = TimeSpan.FromMilliseconds(50) },
        };

        var loaded = NodeConfigLoader.Load(NodeConfigWriter.Write(Path.Combine(_dir, "node.json"), config));

        Assert.Equal(NodeConfigWriter.Serialize(config), NodeConfigWriter.Serialize(loaded.Config));
        Assert.Equal(2, loaded.Self.Id);
        Assert.Equal(ClusterConfig.ModeLoadSharing, loaded.Config.Cluster.Mode);
        Assert.Equal(TimeSpan.FromMilliseconds(1.5), loaded.Config.Sync.AntiEntropySettle);
        Assert.Equal(90, loaded.Self.Priority);
    }

    [Fact]
    public void Serialize_Defaults_NoNullsAndNoComputedProperties()
    {
        using var doc = JsonDocument.Parse(NodeConfigWriter.Serialize(new NodeConfig()));

        var nulls = new List<string>();
        Walk(doc.RootElement, "", nulls);
        Assert.Empty(nulls);
        Assert.Equal(["cluster", "node", "sync", "policy", "dataPlane", "plugins", "adaptive", "telemetry", "hooks"], doc.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("100ms", doc.RootElement.GetProperty("sync").GetProperty("heartbeatInterval").GetString());
    }

    [Fact]
    public void HostMembers_ThreePorts_PrioritiesDescendFromMemberOne()
    {
        var members = NodeConfigWriter.HostMembers([1001, 1002, 1003], [2001, 2002, 2003], "10.0.0.1", m => $"nats://x/m{m}");

        Assert.Equal([100, 90, 80], members.Select(m => m.Priority));
        Assert.Equal(["10.0.0.1:1001", "10.0.0.1:1002", "10.0.0.1:1003"], members.Select(m => m.Address));
        Assert.Equal([2001, 2002, 2003], members.Select(m => m.FullSyncPort));
        Assert.Equal("nats://x/m3", members[2].TransportAddress);
        Assert.Throws<ArgumentOutOfRangeException>(() => NodeConfigWriter.HostMembers([1], [1, 2]));
    }

    private static void Walk(JsonElement e, string path, List<string> nulls)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Null:
                nulls.Add(path);
                break;
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    Walk(p.Value, $"{path}.{p.Name}", nulls);
                }

                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    Walk(item, $"{path}[{i++}]", nulls);
                }

                break;
        }
    }
}
