using ClusterSync.Security;

namespace ClusterSync.Cli.Tests.Packaging;

/// <summary>
/// The configurations users start from (<c>examples/</c>, <c>packaging/node.example.json</c>) load as they are (with a
/// key and token where they name them) and carry production timers: a dead interval of at least one second.
/// </summary>
public sealed class ExampleConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-examples-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("examples/node1.json")]
    [InlineData("examples/node2.json")]
    [InlineData("examples/node3.json")]
    [InlineData("packaging/node.example.json")]
    public void ExampleConfig_LoadedWithItsFiles_ValidAndDeadIntervalAtLeastOneSecond(string example)
    {
        var text = File.ReadAllText(Path.Combine(CliProcess.RepositoryRoot(), example))
            .Replace("/etc/clustersync", _dir, StringComparison.Ordinal)
            .Replace("/var/lib/clustersync", _dir, StringComparison.Ordinal);
        var path = Path.Combine(_dir, Path.GetFileName(example));
        File.WriteAllText(path, text);
        ClusterKey.Generate().WriteFile(Path.Combine(_dir, "cluster.key"));
        ControlTokenFile.Write(Path.Combine(_dir, "control.token"));

        using var model = NodeConfigLoader.Load(path);

        var dead = model.EngineOptions.DeadInterval;
        Assert.True(dead >= TimeSpan.FromSeconds(1), $"{example}: dead interval {dead.TotalMilliseconds} ms (heartbeat {model.Config.Sync.HeartbeatInterval.TotalMilliseconds} ms x {model.Config.Sync.DeadAfterMissedHeartbeats})");
        Assert.False(model.Config.Cluster.Insecure);
    }
}
