using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Two members as separate OS processes (<c>dotnet clustersync.dll node --config ...</c>) on loopback with ephemeral
/// ports and a key from <c>clustersync keygen</c>: one drives the workload generator, one is a pure replica.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed partial class NodeProcessTests : IDisposable
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-node-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    // The generator drives only while its member is Active; preemption makes member 1 (priority 100) Active
    // whichever process comes up first.
    private readonly int _fullSync1 = NodeProcess.FreeTcpPort();
    private readonly int _fullSync2 = NodeProcess.FreeTcpPort();

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task TwoNodeProcesses_GeneratorAndReplica_ReplicateAndServeControlEndpoint()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);

        int sync1 = NodeProcess.FreeUdpPort(), sync2 = NodeProcess.FreeUdpPort();
        int control1 = NodeProcess.FreeTcpPort(), control2 = NodeProcess.FreeTcpPort();
        var config1 = WriteConfig(1, sync1, sync2, control1, """{"source": "generator", "generator": {"seed": 7, "connections": 3000, "changesPerSecond": 20000, "maxChanges": 15000}}""");
        var config2 = WriteConfig(2, sync1, sync2, control2, """{"source": "none"}""");
        var endpoint1 = $"http://127.0.0.1:{control1}";
        var endpoint2 = $"http://127.0.0.1:{control2}";

        await using var generator = NodeProcess.Start("node", "--config", config1);
        await using var replica = NodeProcess.Start("node", "--config", config2);
        try
        {
            // /healthz: 200 once each engine runs.
            await WaitUntilAsync(async () => await HealthAsync(endpoint1) == HttpStatusCode.OK && await HealthAsync(endpoint2) == HttpStatusCode.OK,
                "both /healthz return 200", generator, replica);

            // Replication: the generator stops after maxChanges; the replica's table then matches its live connections.
            JsonElement g = default, r = default;
            await WaitUntilAsync(async () =>
            {
                g = await StatusAsync(endpoint1);
                r = await StatusAsync(endpoint2);
                var dp = g.GetProperty("dataPlane");
                return dp.GetProperty("finished").GetBoolean()
                    && g.GetProperty("pending").GetInt32() == 0
                    && g.GetProperty("tableSize").GetInt32() == dp.GetProperty("liveConnections").GetInt32()
                    && r.GetProperty("tableSize").GetInt32() == dp.GetProperty("liveConnections").GetInt32();
            }, "the replica's table size equals the generator's live connections", generator, replica);

            Assert.True(g.GetProperty("dataPlane").GetProperty("liveConnections").GetInt32() > 1000);
            Assert.Equal(1, g.GetProperty("memberId").GetInt32());
            Assert.Equal(2, r.GetProperty("memberId").GetInt32());
            Assert.Equal("running", r.GetProperty("state").GetString());
            Assert.Equal("Active", g.GetProperty("membership").GetProperty("state").GetString());
            Assert.Equal("Standby", r.GetProperty("membership").GetProperty("state").GetString());
            Assert.Equal("Active", r.GetProperty("peers")[0].GetProperty("memberState").GetString());
            Assert.True(r.GetProperty("counters").GetProperty("updates_applied").GetInt64() > 0);
            var peerOfReplica = Assert.Single(r.GetProperty("peers").EnumerateArray().ToList());
            Assert.Equal(1, peerOfReplica.GetProperty("memberId").GetInt32());
            Assert.True(peerOfReplica.GetProperty("alive").GetBoolean());
            Assert.Equal(g.GetProperty("epoch").GetUInt64(), peerOfReplica.GetProperty("epoch").GetUInt64());

            // /metrics: valid Prometheus text with the engine's counters.
            var metrics = ParsePrometheus(await _http.GetStringAsync($"{endpoint2}/metrics"));
            foreach (var family in new[]
            {
                "clustersync_updates_sent_total", "clustersync_updates_received_total", "clustersync_updates_applied_total",
                "clustersync_bytes_sent_total", "clustersync_bytes_received_total", "clustersync_retransmissions_total",
                "clustersync_nack_ranges_sent_total", "clustersync_drops_total", "clustersync_queue_depth",
                "clustersync_table_size", "clustersync_resync_needed_total", "clustersync_member_state", "clustersync_peer_member_state",
                "clustersync_failovers_total", "clustersync_split_brains_total", "clustersync_last_failover_milliseconds",
                "clustersync_full_sync_served_total", "clustersync_full_sync_received_total", "clustersync_full_sync_receive_failed_total",
            })
            {
                Assert.True(metrics.ContainsKey(family), $"missing {family}");
            }

            Assert.Equal(r.GetProperty("tableSize").GetInt32(), metrics["clustersync_table_size"]);
            Assert.True(metrics["clustersync_updates_applied_total"] > 0);
            var senderMetrics = ParsePrometheus(await _http.GetStringAsync($"{endpoint1}/metrics"));
            Assert.True(senderMetrics["clustersync_updates_sent_total"] > 0);

            // clustersync status --json against the running replica prints its status document.
            var (statusCode, statusOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--json", "--endpoint", endpoint2);
            Assert.True(statusCode == 0, statusOutput);
            using (var doc = JsonDocument.Parse(statusOutput))
            {
                Assert.Equal(2, doc.RootElement.GetProperty("memberId").GetInt32());
            }

            // ... and the table form.
            (statusCode, statusOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint1);
            Assert.True(statusCode == 0, statusOutput);
            Assert.Contains("Sync statistics", statusOutput, StringComparison.Ordinal);
            Assert.Contains("updates_sent", statusOutput, StringComparison.Ordinal);

            // SIGTERM stops a node cleanly (exit 0), and its endpoint goes away.
            await replica.TerminateAsync();
            Assert.Equal(0, await replica.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("Member 2 stopped", replica.Output, StringComparison.Ordinal);
            (statusCode, statusOutput) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint2, "--timeout", "2");
            Assert.True(statusCode == 1, statusOutput);
            Assert.Contains("cannot reach the node", statusOutput, StringComparison.Ordinal);
        }
        catch
        {
            Console.WriteLine($"--- generator output ---\n{generator.Output}\n--- replica output ---\n{replica.Output}");
            throw;
        }
    }

    [Fact]
    public async Task Status_BadEndpoint_ExitsTwo()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", "not a url");

        Assert.True(code == 2, output);
        Assert.Contains("--endpoint", output, StringComparison.Ordinal);
    }

    private string WriteConfig(int memberId, int sync1, int sync2, int control, string dataPlane)
    {
        var path = Path.Combine(_dir, $"node{memberId}.json");
        File.WriteAllText(path, $$"""
            {
              "cluster": {
                "keyFile": "cluster.key",
                "preemption": true,
                "members": [
                  { "id": 1, "address": "127.0.0.1:{{sync1}}", "priority": 100, "fullSyncPort": {{_fullSync1}} },
                  { "id": 2, "address": "127.0.0.1:{{sync2}}", "priority": 90, "fullSyncPort": {{_fullSync2}} }
                ]
              },
              "node": { "memberId": {{memberId}}, "control": { "port": {{control}} } },
              "sync": { "tableCapacity": 16384 },
              "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
              "dataPlane": {{dataPlane}}
            }
            """);
        return path;
    }

    private async Task<HttpStatusCode?> HealthAsync(string endpoint)
    {
        if (!NodeProcess.ControlReady(endpoint))
        {
            return null;
        }

        try
        {
            using var response = await _http.GetAsync($"{endpoint}/healthz");
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException)
        {
            return null;
        }
    }

    private async Task<JsonElement> StatusAsync(string endpoint)
    {
        using var doc = JsonDocument.Parse(await _http.GetStringAsync($"{endpoint}/status"));
        return doc.RootElement.Clone();
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails after <see cref="s_wait"/> or as soon as a node exits.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, params NodeProcess[] nodes)
        => await Wait.UntilAsync(
            async () =>
            {
                foreach (var n in nodes)
                {
                    Assert.False(n.HasExited, $"a node exited while waiting until {what}:\n{n.Output}");
                }

                return await condition();
            },
            s_wait,
            () => $"timed out after {s_wait} waiting until {what}",
            poll: TimeSpan.FromMilliseconds(100));

    /// <summary>
    /// Parses the Prometheus text exposition format strictly enough to catch a broken exposition: every family has
    /// HELP and TYPE before its samples, every sample line is <c>name{labels} value</c>. Returns each family's summed value.
    /// </summary>
    private static Dictionary<string, double> ParsePrometheus(string text)
    {
        var typed = new Dictionary<string, string>(StringComparer.Ordinal);
        var helped = new HashSet<string>(StringComparer.Ordinal);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                helped.Add(line.Split(' ')[2]);
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Contains(parts[3], new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                typed[parts[2]] = parts[3];
                continue;
            }

            Assert.False(line.StartsWith('#'), $"unexpected comment: {line}");
            var m = SampleLine().Match(line);
            Assert.True(m.Success, $"not a Prometheus sample line: '{line}'");
            var name = m.Groups["name"].Value;
            Assert.True(typed.ContainsKey(name) && helped.Contains(name), $"sample before its HELP/TYPE: {line}");
            values[name] = values.GetValueOrDefault(name) + double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }

        return values;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*,?)?\})? (?<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))( -?[0-9]+)?$""")]
    private static partial Regex SampleLine();
}
