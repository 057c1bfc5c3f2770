namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Two encrypted <c>clustersync node</c> processes with two sync links each (so the per-link series exist), member 1
/// generating traffic with adaptive mode (the shipped model) and telemetry on, member 2 a Standby replica: every metric
/// family a node can export is in one of their <c>/metrics</c> answers. Started once for the tests of this class.
/// </summary>
public sealed class RunningNodesMetrics : IAsyncLifetime
{
    public NodeCluster Cluster { get; } = new(2);

    /// <summary>The <c>/metrics</c> answers of member 1 (Active, adaptive) and member 2 (Standby), once both are settled.</summary>
    public string[] Metrics { get; private set; } = [];

    public async Task InitializeAsync()
    {
        var cluster = Cluster;
        await cluster.KeygenAsync();
        int[] sync = cluster.Sync;
        Func<NodeConfig, NodeConfig> twoLinks = c => c with
        {
            Cluster = c.Cluster with
            {
                Members = c.Cluster.Members.Select(m => m with
                {
                    Address = "",
                    Links = [new LinkConfig { Id = 1, Address = $"127.0.0.1:{sync[m.Id - 1]}" }, new LinkConfig { Id = 2, Address = $"127.0.0.2:{sync[m.Id - 1]}" }],
                }).ToList(),
            },
        };
        var syncConfig = new SyncConfig { TableCapacity = 16_384, HeartbeatInterval = TimeSpan.FromMilliseconds(200), DeadAfterMissedHeartbeats = 5 };
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Connections = 2000, ChangesPerSecond = 2000 }), syncConfig, c => twoLinks(c) with
        {
            Policy = new PolicyOptions(),
            Adaptive = new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMilliseconds(200) },
            Telemetry = new TelemetryOptions { Enabled = true, Path = Path.Combine(cluster.Directory, "telemetry.db"), FlushInterval = TimeSpan.FromMilliseconds(50) },
        });
        cluster.Write(2, NodeCluster.NoDataPlane, syncConfig, twoLinks);
        cluster.Start(1);
        cluster.Start(2);

        string m1 = "", m2 = "";
        await cluster.WaitUntilAsync(async () =>
        {
            if (NodeCluster.MemberState(await cluster.StatusAsync(1)) != "Active" || NodeCluster.MemberState(await cluster.StatusAsync(2)) != "Standby")
            {
                return false;
            }

            m1 = Encoding.UTF8.GetString(await cluster.GetBytesAsync(1, "/metrics"));
            m2 = Encoding.UTF8.GetString(await cluster.GetBytesAsync(2, "/metrics"));
            return m1.Contains("clustersync_adaptive_comparison_messages{", StringComparison.Ordinal)
                && m1.Contains("clustersync_link_up{", StringComparison.Ordinal) && m2.Contains("clustersync_link_up{", StringComparison.Ordinal);
        }, "member 1 Active with adaptive comparisons in /metrics, member 2 Standby, both with per-link series", TimeSpan.FromSeconds(90));
        Metrics = [m1, m2];
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    /// <summary>The metric names that have at least one sample line in the answers.</summary>
    public HashSet<string> SampledNames() => Metrics
        .SelectMany(m => m.Split('\n'))
        .Where(l => l.Length > 0 && l[0] != '#')
        .Select(l => l[..l.IndexOfAny(['{', ' '])])
        .ToHashSet(StringComparer.Ordinal);
}

[Collection(TimingSensitiveCollection.Name)]
public sealed class MetricsExpositionProcessTests(RunningNodesMetrics nodes) : IClassFixture<RunningNodesMetrics>
{
    [SkippableFact]
    public async Task Metrics_ActiveAndStandbyNodes_PassPromtoolCheckMetrics()
    {
        var promtool = FindOnPath("promtool");
        Skip.If(promtool is null, "promtool is not installed (Debian package prometheus; .ci/run installs it)");

        for (int member = 1; member <= 2; member++)
        {
            var text = nodes.Metrics[member - 1];
            var info = new ProcessStartInfo(promtool!, ["check", "metrics"])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            await p.StandardInput.WriteAsync(text);
            p.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await p.WaitForExitAsync(timeout.Token);
            var problems = (await stdout + await stderr).Trim();
            Assert.True(p.ExitCode == 0 && problems.Length == 0, $"member {member}: promtool check metrics exit {p.ExitCode}:\n{problems}\n--- /metrics ---\n{text}");
        }
    }

    [Fact]
    public void GrafanaDashboard_EveryMetricItQueries_HasSamplesInRunningNodesMetrics()
    {
        var path = Path.Combine(CliProcess.RepositoryRoot(), "docs", "grafana", "clustersync-dashboard.json");
        var dashboard = JsonNode.Parse(File.ReadAllText(path))!;
        var queries = new List<string>();
        Collect(dashboard, queries);
        var queried = queries.SelectMany(q => Regex.Matches(q, @"\bclustersync_[a-z0-9_]+").Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);

        // The panels the operator needs: sync rate, replication lag, exposure, adaptive vs static, link health, failovers.
        foreach (var needed in new[]
        {
            "clustersync_updates_sent_total", "clustersync_peer_replication_lag_seconds", "clustersync_exposure_connections",
            "clustersync_adaptive_comparison_messages", "clustersync_link_up", "clustersync_peer_up", "clustersync_failovers_total",
        })
        {
            Assert.Contains(needed, queried);
        }

        var sampled = nodes.SampledNames();
        var missing = queried.Where(n => !sampled.Contains(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, $"{path} queries metrics no running node exports: {string.Join(", ", missing)}\nexported: {string.Join(", ", sampled.Order(StringComparer.Ordinal))}");
    }

    /// <summary>Every query string of the dashboard: panel targets' <c>expr</c> and template variables' queries.</summary>
    private static void Collect(JsonNode? node, List<string> queries)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, value) in o)
                {
                    if (name is "expr" or "definition" or "query" && value is JsonValue v && v.TryGetValue<string>(out var s))
                    {
                        queries.Add(s);
                    }
                    else
                    {
                        Collect(value, queries);
                    }
                }

                break;
            case JsonArray a:
                foreach (var item in a)
                {
                    Collect(item, queries);
                }

                break;
        }
    }

    private static string? FindOnPath(string program)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program))
            .FirstOrDefault(File.Exists);
}
