namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Two members as separate OS processes (<c>dotnet clustersync.dll node --config ...</c>) on loopback with ephemeral
/// ports and a key from <c>clustersync keygen</c>: one drives the workload generator, one is a pure replica.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed partial class NodeProcessTests(ITestOutputHelper log)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TwoNodeProcesses_GeneratorAndReplica_ReplicateAndServeControlEndpoint()
    {
        // The generator drives only while its member is Active; preemption makes member 1 (priority 100) Active
        // whichever process comes up first.
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        Func<NodeConfig, NodeConfig> preemption = c => c with { Cluster = c.Cluster with { Preemption = true } };
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 7, Connections = 3000, ChangesPerSecond = 20000, MaxChanges = 15000 }), adjust: preemption);
        cluster.Write(2, NodeCluster.NoDataPlane, adjust: preemption);
        string endpoint1 = cluster.Endpoint(1), endpoint2 = cluster.Endpoint(2);
        cluster.Start(1);
        var replica = cluster.Start(2);

        // /healthz: 200 once each engine runs.
        await cluster.WaitUntilAsync(async () => await HealthAsync(cluster, 1) == HttpStatusCode.OK && await HealthAsync(cluster, 2) == HttpStatusCode.OK,
            "both /healthz return 200", s_wait);

        // Replication: the generator stops after maxChanges; the replica's table then matches its live connections.
        JsonElement g = default, r = default;
        await cluster.WaitUntilAsync(async () =>
        {
            if (await cluster.StatusAsync(1) is not { } gs || await cluster.StatusAsync(2) is not { } rs)
            {
                return false;
            }

            (g, r) = (gs, rs);
            var dp = g.GetProperty("dataPlane");
            return dp.GetProperty("finished").GetBoolean()
                && g.GetProperty("pending").GetInt32() == 0
                && g.GetProperty("tableSize").GetInt32() == dp.GetProperty("liveConnections").GetInt32()
                && r.GetProperty("tableSize").GetInt32() == dp.GetProperty("liveConnections").GetInt32();
        }, "the replica's table size equals the generator's live connections", s_wait);

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
        var metrics = ParsePrometheus(Encoding.UTF8.GetString(await cluster.GetBytesAsync(2, "/metrics")));
        foreach (var family in new[]
        {
            "clustersync_updates_sent_total", "clustersync_updates_received_total", "clustersync_updates_applied_total",
            "clustersync_bytes_sent_total", "clustersync_bytes_received_total", "clustersync_retransmissions_total",
            "clustersync_nack_ranges_sent_total", "clustersync_drops_total", "clustersync_queue_depth",
            "clustersync_table_size", "clustersync_resync_needed_total", "clustersync_member_state", "clustersync_peer_member_state",
            "clustersync_failovers_total", "clustersync_split_brains_total", "clustersync_last_failover_seconds",
            "clustersync_full_sync_served_total", "clustersync_full_sync_received_total", "clustersync_full_sync_receive_failed_total",
        })
        {
            Assert.True(metrics.ContainsKey(family), $"missing {family}");
        }

        Assert.Equal(r.GetProperty("tableSize").GetInt32(), metrics["clustersync_table_size"]);
        Assert.True(metrics["clustersync_updates_applied_total"] > 0);
        var senderMetrics = ParsePrometheus(Encoding.UTF8.GetString(await cluster.GetBytesAsync(1, "/metrics")));
        Assert.True(senderMetrics["clustersync_updates_sent_total"] > 0);

        // clustersync status --json against the running replica prints its status document.
        var status = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--json", "--endpoint", endpoint2);
        Assert.True(status.ExitCode == 0, status.Output);
        using (var doc = JsonDocument.Parse(status.Stdout))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("memberId").GetInt32());
        }

        // ... and the table form.
        status = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint1);
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains("Sync statistics", status.Output, StringComparison.Ordinal);
        Assert.Contains("updates_sent", status.Output, StringComparison.Ordinal);

        // SIGTERM stops a node cleanly (exit 0), and its endpoint goes away.
        await replica.TerminateAsync();
        Assert.Equal(0, await replica.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("Member 2 stopped", replica.Output, StringComparison.Ordinal);
        status = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", endpoint2, "--timeout", "2");
        Assert.True(status.ExitCode == 1, status.Output);
        Assert.Contains("cannot reach the node", status.Output, StringComparison.Ordinal);
    }

    private static async Task<HttpStatusCode?> HealthAsync(NodeCluster cluster, int member)
    {
        if (cluster[member] is not { } node || !node.ControlReady(cluster.Endpoint(member)))
        {
            return null;
        }

        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            using var response = await http.GetAsync($"{cluster.Endpoint(member)}/healthz");
            return response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

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
