namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// Isolation of a data-plane plugin (a built test plugin loaded from disk by real node processes): its source throwing
/// and its sink throwing on failover are counted and reported (<c>/status</c>, <c>/healthz</c> 503), and the node keeps
/// running, synchronizing and failing over; the in-process replica is committed regardless.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class DataPlaneIsolationProcessTests(ITestOutputHelper log)
{
    [Fact]
    public async Task FaultyDataPlane_SourceAndSinkThrow_CountedHealthRedNodeKeepsSyncingAndFailsOver()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestDataPlane.Faulty"), "TestDataPlane.Faulty");
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        WriteWithPlugins(cluster, 1, NodeCluster.PluginDataPlane("faulty-plane", new { failAfter = 300 }), files.Directory);
        WriteWithPlugins(cluster, 2, NodeCluster.PluginDataPlane("faulty-plane", new { sinkThrows = true }), files.Directory);
        var n1 = cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");
        cluster.Start(2);

        // The source submitted 300 connections, then threw: counted, red health, the node runs on and member 2 has them.
        var s1 = (await cluster.WaitForStatusesAsync(
            s => s[0].GetProperty("dataPlane").GetProperty("plugin").GetProperty("sourceState").GetString() == "failed"
                && NodeCluster.Settled(s[0]) && NodeCluster.MemberState(s[1]) == "Standby" && s[1].GetProperty("tableSize").GetInt32() == 300,
            "member 1's source failed and member 2 holding its 300 connections"))[0];
        var p1 = s1.GetProperty("dataPlane").GetProperty("plugin");
        Assert.Equal(1, p1.GetProperty("sourceExceptions").GetInt64());
        Assert.Contains("faulty source: broke after 300 connections", p1.GetProperty("failure").GetString(), StringComparison.Ordinal);
        Assert.Equal("running", s1.GetProperty("state").GetString());
        Assert.Equal(300, s1.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64());
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using (var health = await http.GetAsync($"{cluster.Endpoint(1)}/healthz"))
        {
            Assert.Equal(503, (int)health.StatusCode);
            Assert.Contains("data-plane plugin 'faulty-plane'", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var health = await http.GetAsync($"{cluster.Endpoint(2)}/healthz"))
        {
            Assert.Equal(200, (int)health.StatusCode);
        }

        // Readiness: the Active serves (no commit pending), the Standby does not.
        using (var ready = await http.GetAsync($"{cluster.Endpoint(1)}/readyz"))
        {
            Assert.Equal(200, (int)ready.StatusCode);
            Assert.Equal("serving\n", await ready.Content.ReadAsStringAsync());
        }

        using (var ready = await http.GetAsync($"{cluster.Endpoint(2)}/readyz"))
        {
            Assert.Equal(503, (int)ready.StatusCode);
            Assert.Contains("member is Standby", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Failover: member 2's plugin sink throws; the in-process replica is committed, member 2 is Active and runs on.
        var before = NodeCluster.Digest(s1);
        n1.Kill();
        await n1.WaitForExitAsync(TimeSpan.FromSeconds(10));
        var s2 = await cluster.WaitForStatusAsync(2, b => NodeCluster.MemberState(b) == "Active"
            && b.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkExceptions").GetInt64() >= 1
            && !b.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommitting").GetBoolean(),
            "member 2 Active after its sink threw", TimeSpan.FromSeconds(10));
        Assert.Equal(before, NodeCluster.Digest(s2.GetProperty("membership").GetProperty("committed")));
        Assert.Equal(0, s2.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommits").GetInt64());
        Assert.Equal("running", s2.GetProperty("state").GetString());
        using (var health = await http.GetAsync($"{cluster.Endpoint(2)}/healthz"))
        {
            Assert.Equal(503, (int)health.StatusCode);
            Assert.Contains("sink failed to commit 300 connections", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The failed commit has ended: member 2 serves (its in-process replica), and says when the commit ended.
        var p2 = s2.GetProperty("dataPlane").GetProperty("plugin");
        Assert.False(p2.GetProperty("sinkCommitting").GetBoolean());
        Assert.True(p2.GetProperty("sinkCommitFinishedUnixMs").GetInt64() > 0);
        Assert.Equal(0, p2.GetProperty("sinkCommitTimeouts").GetInt64());
        using (var ready = await http.GetAsync($"{cluster.Endpoint(2)}/readyz"))
        {
            Assert.Equal(200, (int)ready.StatusCode);
        }
    }

    private static void WriteWithPlugins(NodeCluster cluster, int member, DataPlaneConfig dataPlane, string pluginDirectory)
        => cluster.Write(member, dataPlane, adjust: c => c with { Plugins = new PluginsConfig { Directory = pluginDirectory, Classifier = "built-in", HotReload = false } });
}
