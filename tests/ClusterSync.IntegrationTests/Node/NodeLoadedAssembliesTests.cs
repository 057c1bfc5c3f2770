namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A running node loads no plotting or training-only code: <c>clustersync</c> keeps <c>train</c> and <c>simulate</c>,
/// which reference ClusterSync.Training (ScottPlot, SkiaSharp), but nothing on the node path (command registration,
/// the node host, adaptive mode with the shipped model, telemetry) touches a training type, so .NET never loads
/// those assemblies into a node. Checked on a real node process through <c>/proc/&lt;pid&gt;/maps</c>.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NodeLoadedAssembliesTests : IDisposable
{
    private static readonly string[] s_forbidden = ["ScottPlot", "SkiaSharp", "libSkiaSharp", "ClusterSync.Training"];

    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-loaded-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [SkippableFact]
    public async Task Node_AdaptiveWithTelemetryServingStatus_MapsNoTrainingOrPlottingAssembly()
    {
        Skip.IfNot(File.Exists("/proc/self/maps"), "/proc/<pid>/maps is not available on this OS: the loaded assemblies of another process cannot be read");

        var (config, endpoint) = NodeProcess.WriteSingleMemberConfig(_dir, """
            "dataPlane": { "source": "generator", "generator": { "seed": 5, "connections": 1000, "changesPerSecond": 20000, "maxChanges": 5000 } },
            "adaptive": { "enabled": true, "feedbackInterval": "200ms" },
            "telemetry": { "enabled": true, "path": "telemetry.db", "metricsInterval": "200ms", "flushInterval": "50ms" }
            """);
        await using var node = NodeProcess.Start("node", "--config", config);

        await FailoverProcessTests.WaitUntilAsync(async () => await FailoverProcessTests.StatusAsync(_http, endpoint) is { } s
                && s.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
                && s.GetProperty("adaptive").GetProperty("mode").GetString() == "model",
            "the node's status (generator finished, adaptive mode on the shipped model)", TimeSpan.FromSeconds(60), node);
        _ = await _http.GetStringAsync($"{endpoint}/metrics");

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
