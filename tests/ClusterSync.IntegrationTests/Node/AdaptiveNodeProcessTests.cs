namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A node process with adaptive mode (cold start: no model) and telemetry capture on: its status shows exposure and the
/// controller, its metrics the adaptive gauges, and <c>clustersync telemetry export</c> turns its file into CSV.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class AdaptiveNodeProcessTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Node_AdaptiveColdStartWithTelemetry_StatusShowsExposureAndExportWritesCsv()
    {
        await using var cluster = new NodeCluster(1, log);
        string dir = cluster.Directory;
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 3, Connections = 2000, ChangesPerSecond = 20_000, MaxChanges = 40_000 }), adjust: c => c with
        {
            Policy = new PolicyOptions(), // the default service classes
            Adaptive = new AdaptiveOptions { Enabled = true, Model = "none", LossBudget = 0.02, ColdStartMinSamples = 50, FeedbackInterval = TimeSpan.FromMilliseconds(200) },
            Telemetry = new TelemetryOptions { Enabled = true, Path = "telemetry.db", MetricsInterval = TimeSpan.FromMilliseconds(200), FlushInterval = TimeSpan.FromMilliseconds(50) },
        });
        var node = cluster.Start(1);
        var s = await StatusWhenAsync(cluster, st => st.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
            && st.GetProperty("telemetry").GetProperty("written").GetInt64() > 1000
            && st.GetProperty("adaptive").GetProperty("outcomesObserved").GetInt64() > 1000);

        var adaptive = s.GetProperty("adaptive");
        Assert.Equal("cold-start", adaptive.GetProperty("mode").GetString());
        Assert.Equal(JsonValueKind.Null, adaptive.GetProperty("model").ValueKind);
        Assert.Equal(0.02, adaptive.GetProperty("lossBudget").GetDouble());
        var decisions = adaptive.GetProperty("decisions");
        Assert.True(decisions.GetProperty("never_skip").GetInt64() > 0, decisions.ToString()); // ssh, https, databases...
        var exposure = s.GetProperty("exposure");
        Assert.True(exposure.GetProperty("connections").GetInt32() >= 0);
        Assert.True(exposure.GetProperty("connections").GetInt32() <= s.GetProperty("tableSize").GetInt32());
        var mc = adaptive.GetProperty("classes").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "mission-critical");
        Assert.True(mc.GetProperty("neverSkip").GetBoolean());

        var metrics = System.Text.Encoding.UTF8.GetString(await cluster.GetBytesAsync(1, "/metrics"));
        foreach (var family in new[] { "clustersync_exposure_connections", "clustersync_adaptive_price", "clustersync_adaptive_realized_loss", "clustersync_telemetry_records_written_total" })
        {
            Assert.Contains($"# TYPE {family} ", metrics, StringComparison.Ordinal);
        }

        // From the running node itself (a consistent export while its writer works; copying the file could tear it).
        long writtenBefore = (await cluster.StatusAsync(1))!.Value.GetProperty("telemetry").GetProperty("written").GetInt64();
        var live = Path.Combine(dir, "live-trace.csv");
        var liveExport = await cluster.RunAsync(TimeSpan.FromSeconds(60), "telemetry", "export",
            "--endpoint", cluster.Endpoint(1), "--out", live, "--format", "trace");
        Assert.True(liveExport.ExitCode == 0, liveExport.Output);
        var liveLines = File.ReadAllLines(live);
        Assert.True(liveLines.Length - 1 >= writtenBefore, $"{liveLines.Length - 1} exported from the running node, {writtenBefore} written before");
        var both = await cluster.RunAsync(TimeSpan.FromSeconds(30), "telemetry", "export",
            "--endpoint", cluster.Endpoint(1), "--db", Path.Combine(dir, "telemetry.db"), "--out", live);
        Assert.True(both.ExitCode == 2, both.Output);
        Assert.Contains("exactly one of --db", both.Stderr, StringComparison.Ordinal);

        await AssertStatusTableThenStopAsync(cluster, node, "cold start");

        var csv = Path.Combine(dir, "lifecycles.csv");
        var metricsCsv = Path.Combine(dir, "metrics.csv");
        var export = await cluster.RunAsync(TimeSpan.FromSeconds(60), "telemetry", "export",
            "--db", Path.Combine(dir, "telemetry.db"), "--out", csv, "--metrics", metricsCsv);
        Assert.True(export.ExitCode == 0, export.Output);
        var lines = File.ReadAllLines(csv);
        Assert.StartsWith("member,start_ms,end_ms,lifetime_s,", lines[0], StringComparison.Ordinal);
        Assert.True(lines.Length > 1000, $"{lines.Length} lines");
        Assert.Contains(lines, l => l.Contains(",mission-critical,now,0,,never-skip,true,", StringComparison.Ordinal));
        Assert.True(File.ReadAllLines(metricsCsv).Length > 1);

        // The data scientist's path: the capture as a trace, which the simulator (and 'train --trace') reads.
        var trace = Path.Combine(dir, "trace.csv");
        export = await cluster.RunAsync(TimeSpan.FromSeconds(60), "telemetry", "export",
            "--db", Path.Combine(dir, "telemetry.db"), "--out", trace, "--format", "trace");
        Assert.True(export.ExitCode == 0, export.Output);
        var simulate = await cluster.RunAsync(TimeSpan.FromSeconds(120), "simulate", "--trace", trace, "--json");
        Assert.True(simulate.ExitCode == 0, simulate.Output);
        using (var sim = JsonDocument.Parse(simulate.Stdout[simulate.Stdout.IndexOf('{', StringComparison.Ordinal)..]))
        {
            Assert.Equal(lines.Length - 1, sim.RootElement.GetProperty("connections").GetInt32());
        }

        var bad = await cluster.RunAsync(TimeSpan.FromSeconds(30), "telemetry", "export", "--db", Path.Combine(dir, "nope.db"), "--out", csv);
        Assert.True(bad.ExitCode == 2, bad.Output);
        Assert.Contains("nope.db", bad.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_AdaptiveWithoutModel_UsesTheShippedModelAndStatusNamesIt()
    {
        await using var cluster = new NodeCluster(1, log);
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 5, Connections = 2000, ChangesPerSecond = 20_000, MaxChanges = 20_000 }),
            adjust: c => c with { Policy = new PolicyOptions(), Adaptive = new AdaptiveOptions { Enabled = true } });
        var node = cluster.Start(1);
        var s = await StatusWhenAsync(cluster, st => st.GetProperty("dataPlane").GetProperty("finished").GetBoolean());

        var adaptive = s.GetProperty("adaptive");
        Assert.Equal("model", adaptive.GetProperty("mode").GetString());
        Assert.Equal("lifetime", adaptive.GetProperty("model").GetString());
        Assert.Equal("shipped", adaptive.GetProperty("modelSource").GetString());
        var shipped = Path.Combine(Path.GetDirectoryName(CliProcess.CliDll())!, "models", "lifetime.zip");
        Assert.Equal(shipped, adaptive.GetProperty("modelPath").GetString());
        Assert.False(string.IsNullOrEmpty(adaptive.GetProperty("modelTrainedAt").GetString()));
        var decisions = adaptive.GetProperty("decisions");
        Assert.True(decisions.GetProperty("now").GetInt64() + decisions.GetProperty("delayed").GetInt64() + decisions.GetProperty("never").GetInt64() > 0, decisions.ToString());

        await AssertStatusTableThenStopAsync(cluster, node, "lifetime (shipped)");
    }

    /// <summary><c>clustersync status</c>'s tables show the exposure and <paramref name="model"/>; then SIGTERM stops the node with exit 0.</summary>
    private static async Task AssertStatusTableThenStopAsync(NodeCluster cluster, CliProcess node, string model)
    {
        var status = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", cluster.Endpoint(1));
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains("Exposure now", status.Output, StringComparison.Ordinal);
        Assert.Contains(model, status.Output, StringComparison.Ordinal);

        await node.TerminateAsync();
        Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }

    private static Task<JsonElement> StatusWhenAsync(NodeCluster cluster, Func<JsonElement, bool> done)
        => cluster.WaitForStatusAsync(1, done, "the node's status", TimeSpan.FromSeconds(60));
}
