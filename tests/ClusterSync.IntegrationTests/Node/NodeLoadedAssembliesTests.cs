namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A running node loads no plotting or training-only code: <c>clustersync</c> keeps <c>train</c> and <c>simulate</c>,
/// which reference ClusterSync.Training (ScottPlot, SkiaSharp), but nothing on the node path (command registration,
/// the node host, adaptive mode with the shipped model, telemetry) touches a training type, so .NET never loads
/// those assemblies into a node. Checked on a real node process through <c>/proc/&lt;pid&gt;/maps</c>.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NodeLoadedAssembliesTests(ITestOutputHelper log)
{
    private static readonly string[] s_forbidden = ["ScottPlot", "SkiaSharp", "libSkiaSharp", "ClusterSync.Training"];

    [SkippableFact]
    public async Task Node_AdaptiveWithTelemetryServingStatus_MapsNoTrainingOrPlottingAssembly()
    {
        Skip.IfNot(File.Exists("/proc/self/maps"), "/proc/<pid>/maps is not available on this OS: the loaded assemblies of another process cannot be read");

        await using var cluster = new NodeCluster(1, log);
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 5, Connections = 1000, ChangesPerSecond = 20_000, MaxChanges = 5000 }), adjust: c => c with
        {
            Policy = new PolicyOptions(), // the default service classes
            Adaptive = new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMilliseconds(200) },
            Telemetry = new TelemetryOptions { Enabled = true, Path = "telemetry.db", MetricsInterval = TimeSpan.FromMilliseconds(200), FlushInterval = TimeSpan.FromMilliseconds(50) },
        });
        var node = cluster.Start(1);

        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s
                && s.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
                && s.GetProperty("adaptive").GetProperty("mode").GetString() == "model",
            "the node's status (generator finished, adaptive mode on the shipped model)", TimeSpan.FromSeconds(60));
        _ = await cluster.GetBytesAsync(1, "/metrics");

        var mapped = File.ReadAllLines($"/proc/{node.Id}/maps")
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6)
            .Select(f => Path.GetFileName(string.Join(' ', f.Skip(5))))
            .ToHashSet(StringComparer.Ordinal);

        // The check sees managed assemblies at all: the node's own must be there.
        Assert.Contains("ClusterSync.Node.dll", mapped);
        Assert.Contains("ClusterSync.Adaptive.dll", mapped);
        var loaded = mapped.Where(m => s_forbidden.Any(f => m.StartsWith(f, StringComparison.Ordinal))).ToList();
        Assert.True(loaded.Count == 0, $"a node process mapped {string.Join(", ", loaded)}:\n{node.Output}");
    }
}
