using System.Net;
using System.Text.Json;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A node process with adaptive mode (cold start: no model) and telemetry capture on: its status shows exposure and the
/// controller, its metrics the adaptive gauges, and <c>clustersync telemetry export</c> turns its file into CSV.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class AdaptiveNodeProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-adaptive-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Node_AdaptiveColdStartWithTelemetry_StatusShowsExposureAndExportWritesCsv()
    {
        var (config, endpoint) = NodeProcess.WriteSingleMemberConfig(_dir, """
            "dataPlane": { "source": "generator", "generator": { "seed": 3, "connections": 2000, "changesPerSecond": 20000, "maxChanges": 40000 } },
            "adaptive": { "enabled": true, "model": "none", "lossBudget": 0.02, "coldStartMinSamples": 50, "feedbackInterval": "200ms" },
            "telemetry": { "enabled": true, "path": "telemetry.db", "metricsInterval": "200ms", "flushInterval": "50ms" }
            """);
        await using var node = NodeProcess.Start("node", "--config", config);
        try
        {
            var s = await StatusWhenAsync(endpoint, node, st => st.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
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

            var metrics = await _http.GetStringAsync($"{endpoint}/metrics");
            foreach (var family in new[] { "clustersync_exposure_connections", "clustersync_adaptive_price", "clustersync_adaptive_realized_loss", "clustersync_telemetry_records_written_total" })
            {
                Assert.Contains($"# TYPE {family} ", metrics, StringComparison.Ordinal);
            }

            var (code, table) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint);
            Assert.True(code == 0, table);
            Assert.Contains("Exposure now", table, StringComparison.Ordinal);
            Assert.Contains("cold start", table, StringComparison.Ordinal);

            await node.TerminateAsync();
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
        catch
        {
            Console.WriteLine($"--- node output ---\n{node.Output}");
            throw;
        }

        var csv = Path.Combine(_dir, "lifecycles.csv");
        var metricsCsv = Path.Combine(_dir, "metrics.csv");
        var (exportCode, exportOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(60), "telemetry", "export",
            "--db", Path.Combine(_dir, "telemetry.db"), "--out", csv, "--metrics", metricsCsv);
        Assert.True(exportCode == 0, exportOutput);
        var lines = File.ReadAllLines(csv);
        Assert.StartsWith("member,start_ms,end_ms,lifetime_s,", lines[0], StringComparison.Ordinal);
        Assert.True(lines.Length > 1000, $"{lines.Length} lines");
        Assert.Contains(lines, l => l.Contains(",mission-critical,now,0,,never-skip,true,", StringComparison.Ordinal));
        Assert.True(File.ReadAllLines(metricsCsv).Length > 1);

        // The data scientist's path: the capture as a trace, which the simulator (and 'train --trace') reads.
        var trace = Path.Combine(_dir, "trace.csv");
        (exportCode, exportOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(60), "telemetry", "export",
            "--db", Path.Combine(_dir, "telemetry.db"), "--out", trace, "--format", "trace");
        Assert.True(exportCode == 0, exportOutput);
        var (simCode, simOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(120), "simulate", "--trace", trace, "--json");
        Assert.True(simCode == 0, simOutput);
        using (var sim = JsonDocument.Parse(simOutput[simOutput.IndexOf('{', StringComparison.Ordinal)..]))
        {
            Assert.Equal(lines.Length - 1, sim.RootElement.GetProperty("connections").GetInt32());
        }

        var (badCode, badOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "telemetry", "export", "--db", Path.Combine(_dir, "nope.db"), "--out", csv);
        Assert.True(badCode == 2, badOutput);
        Assert.Contains("nope.db", badOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_AdaptiveWithoutModel_UsesTheShippedModelAndStatusNamesIt()
    {
        int sync = NodeProcess.FreeUdpPort(), control = NodeProcess.FreeTcpPort(), fullSync = NodeProcess.FreeTcpPort();
        var config = Path.Combine(_dir, "shipped.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{sync}}", "fullSyncPort": {{fullSync}} } ] },
              "node": { "memberId": 1, "control": { "port": {{control}} } },
              "sync": { "tableCapacity": 16384 },
              "dataPlane": { "source": "generator", "generator": { "seed": 5, "connections": 2000, "changesPerSecond": 20000, "maxChanges": 20000 } },
              "adaptive": { "enabled": true }
            }
            """);
        var endpoint = $"http://127.0.0.1:{control}";
        await using var node = NodeProcess.Start("node", "--config", config);
        try
        {
            var s = await StatusWhenAsync(endpoint, node, st => st.GetProperty("dataPlane").GetProperty("finished").GetBoolean());

            var adaptive = s.GetProperty("adaptive");
            Assert.Equal("model", adaptive.GetProperty("mode").GetString());
            Assert.Equal("lifetime", adaptive.GetProperty("model").GetString());
            Assert.Equal("shipped", adaptive.GetProperty("modelSource").GetString());
            var shipped = Path.Combine(Path.GetDirectoryName(NodeProcess.CliDll())!, "models", "lifetime.zip");
            Assert.Equal(shipped, adaptive.GetProperty("modelPath").GetString());
            Assert.False(string.IsNullOrEmpty(adaptive.GetProperty("modelTrainedAt").GetString()));
            var decisions = adaptive.GetProperty("decisions");
            Assert.True(decisions.GetProperty("now").GetInt64() + decisions.GetProperty("delayed").GetInt64() + decisions.GetProperty("never").GetInt64() > 0, decisions.ToString());

            var (code, table) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint);
            Assert.True(code == 0, table);
            Assert.Contains("Exposure now", table, StringComparison.Ordinal);
            Assert.Contains("lifetime (shipped)", table, StringComparison.Ordinal);

            await node.TerminateAsync();
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        }
        catch
        {
            Console.WriteLine($"--- node output ---\n{node.Output}");
            throw;
        }
    }

    /// <summary>Polls the node's <c>/status</c> (the shared poll of the process tests) until <paramref name="done"/> holds; 60 s.</summary>
    private async Task<JsonElement> StatusWhenAsync(string endpoint, NodeProcess node, Func<JsonElement, bool> done)
    {
        JsonElement last = default;
        await FailoverProcessTests.WaitUntilAsync(async () => await FailoverProcessTests.StatusAsync(_http, endpoint) is { } s && done(last = s),
            "the node's status", TimeSpan.FromSeconds(60), node);
        return last;
    }
}
