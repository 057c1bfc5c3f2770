namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// The shipped trace-replay data-plane plugin, loaded from disk by real <c>clustersync</c> processes on loopback:
/// <c>clustersync replay</c> feeds a generated trace into a 2-member cluster, the Standby converges to the trace's live
/// connections, and on failover the Standby commits the replica into the plugin's sink.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class TraceReplayProcessTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Replay_GeneratedTraceIntoTwoMemberCluster_PeerConvergesToLiveConnections_FailoverCommitsIntoPluginSink()
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        var trace = Path.Combine(cluster.Directory, "trace.csv");
        var generate = await cluster.RunAsync(TimeSpan.FromSeconds(30), "generate", "--out", trace, "--days", "0.01", "--rate", "20", "--start", "2026-01-05T12:00:00Z");
        Assert.True(generate.ExitCode == 0, generate.Output);
        var (connections, expectedLive) = LiveAtLastStart(trace);
        Assert.True(expectedLive >= 50, $"the trace leaves only {expectedLive} connections open");

        // Member 1 replays (its dataPlane section is overridden by `replay`); member 2 has the plugin as a sink only.
        cluster.Write(1, NodeCluster.NoDataPlane);
        cluster.Write(2, NodeCluster.PluginDataPlane("trace-replay"));
        var n1 = cluster.StartAs(1, "replay", "--trace", trace, "--config", cluster.ConfigPath(1), "--speed", "400");
        await cluster.WaitForStateAsync(1, "Active");
        cluster.Start(2);

        // 864 s of trace at 400x: about 2 s of replay.
        var s1 = (await cluster.WaitForStatusesAsync(
            s => NodeCluster.Finished(s[0]) && NodeCluster.Settled(s[0]) && NodeCluster.MemberState(s[1]) == "Standby" && NodeCluster.Digest(s[1]) == NodeCluster.Digest(s[0]),
            "the replay finished and member 2 identical", TimeSpan.FromSeconds(30)))[0];

        var plugin = s1.GetProperty("dataPlane").GetProperty("plugin");
        var source = plugin.GetProperty("sourceCounters");
        log.WriteLine($"{connections} connections in the trace, {expectedLive} live at its last start; member 1: {s1.GetProperty("dataPlane")}");
        Assert.Equal("finished", plugin.GetProperty("sourceState").GetString());
        Assert.Equal(connections, source.GetProperty("trace_connections").GetInt64());
        Assert.Equal(connections, source.GetProperty("connections_started").GetInt64());
        Assert.Equal(expectedLive, source.GetProperty("live_connections").GetInt64());
        Assert.Equal(expectedLive, s1.GetProperty("tableSize").GetInt32());
        var before = NodeCluster.Digest(s1);
        Assert.Equal(expectedLive, before.Count);
        Assert.Equal(0, (await cluster.StatusAsync(2))!.Value.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommits").GetInt64());

        // SIGKILL the Active: member 2 takes over and commits the replica into the trace-replay plugin's sink.
        n1.Kill();
        await n1.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var s2 = await cluster.WaitForStatusAsync(2, b => NodeCluster.MemberState(b) == "Active"
            && b.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommits").GetInt64() >= 1,
            "member 2 Active with the replica committed into the plugin's sink", TimeSpan.FromSeconds(10));

        var p2 = s2.GetProperty("dataPlane").GetProperty("plugin");
        Assert.Equal(expectedLive, p2.GetProperty("sinkCounters").GetProperty("committed_connections").GetInt64());
        Assert.Equal(expectedLive, p2.GetProperty("sinkLastCommitted").GetInt64());
        Assert.Equal(0, p2.GetProperty("sinkExceptions").GetInt64());
        Assert.Equal("none", p2.GetProperty("sourceState").GetString());
        Assert.Equal(before, NodeCluster.Digest(s2.GetProperty("membership").GetProperty("committed")));

        // The plugin's own counters are in /metrics too, by side and name.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var metrics = await http.GetStringAsync($"{cluster.Endpoint(2)}/metrics");
        Assert.Contains($"clustersync_dataplane_plugin{{side=\"sink\",name=\"committed_connections\"}} {expectedLive}", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PluginsJson_ShippedTraceReplay_ListedAsLoadedDataPlane()
    {
        await using var plugins = await CliProcess.RunAsync(TimeSpan.FromSeconds(30), "plugins", "--json");
        Assert.True(plugins.ExitCode == 0, plugins.Output);
        using var doc = JsonDocument.Parse(plugins.Stdout[plugins.Stdout.IndexOf('[', StringComparison.Ordinal)..]);
        var replay = doc.RootElement.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "trace-replay");
        Assert.Equal("dataplane", replay.GetProperty("kind").GetString());
        Assert.Equal("loaded", replay.GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("""{"source": "plugin", "plugin": "no-such-plane"}""", "dataPlane.plugin: no loaded data-plane plugin named 'no-such-plane'")]
    [InlineData("""{"source": "plugin", "plugin": "trace-replay", "settings": {"speed": 0}}""", "dataPlane.settings: the data-plane plugin 'trace-replay' refused its settings: speed:")]
    [InlineData("""{"source": "plugin"}""", "dataPlane.plugin: expected the name of a data-plane plugin")]
    [InlineData("""{"source": "plugin", "plugin": "ftp"}""", "dataPlane.plugin: no loaded data-plane plugin named 'ftp'")]
    public async Task Node_BadDataPlanePlugin_Exit2NamingTheField(string dataPlane, string expected)
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        var config = cluster.Write(1, NodeCluster.DataPlane(dataPlane));
        (await cluster.RunAsync(TimeSpan.FromSeconds(30), "node", "--config", config)).AssertExit2($"{config}: {expected}");
    }

    [Fact]
    public async Task Replay_MissingTraceOrBadSpeed_Exit2NamingTheOption()
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        var config = cluster.Write(1, NodeCluster.NoDataPlane);
        var missing = Path.Combine(cluster.Directory, "missing.csv");
        (await cluster.RunAsync(TimeSpan.FromSeconds(30), "replay", "--trace", missing, "--config", config)).AssertExit2($"--trace: no such file '{missing}'");

        File.WriteAllText(missing, "start,duration,proto,src,sport,dst,dport,service,bytes_out,bytes_in,pkts_out,pkts_in\n");
        (await cluster.RunAsync(TimeSpan.FromSeconds(30), "replay", "--trace", missing, "--config", config, "--speed", "0")).AssertExit2("--speed: expected a factor in (0, 1e9], found 0");
    }

    /// <summary>
    /// What the replay leaves open, computed from the file with the plugin's documented semantics: each connection new at
    /// its start and destroyed at start + duration when that is not after the trace's last start; by time, ties in file order.
    /// </summary>
    private static (long Connections, long Live) LiveAtLastStart(string trace)
    {
        var rows = File.ReadLines(trace).Where(l => l.Length > 0 && l[0] != '#').Skip(1).Select(l => l.Split(',')).Select(f => (
            Start: (long)Math.Round(double.Parse(f[0], CultureInfo.InvariantCulture) * 1e6),
            Duration: (long)Math.Round(double.Parse(f[1], CultureInfo.InvariantCulture) * 1e6),
            Key: $"{f[2]}/{f[3]}/{f[4]}/{f[5]}/{f[6]}")).ToList();
        long horizon = rows.Max(r => r.Start);
        var events = new List<(long Time, int Seq, string Key, bool New)>();
        foreach (var r in rows)
        {
            events.Add((r.Start, events.Count, r.Key, true));
            if (r.Start + r.Duration <= horizon)
            {
                events.Add((r.Start + r.Duration, events.Count, r.Key, false));
            }
        }

        var live = new HashSet<string>();
        foreach (var e in events.OrderBy(e => e.Time).ThenBy(e => e.Seq))
        {
            _ = e.New ? live.Add(e.Key) : live.Remove(e.Key);
        }

        return (rows.Count, live.Count);
    }
}
