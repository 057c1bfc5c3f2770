namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Two node processes with two sync links each (link 1 on 127.0.0.1, link 2 on 127.0.0.2): both links come up and
/// traffic takes link 1; the Active stopped with SIGTERM says Down on its links and the Standby takes over well
/// before the dead interval (1 s here) would have told it.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class SyncLinkProcessTests(ITestOutputHelper log)
{
    private static bool LinksUpOnFirst(JsonElement status)
    {
        var links = status.GetProperty("peers")[0].GetProperty("links");
        return links.GetArrayLength() == 2
            && links[0].GetProperty("id").GetInt32() == 1 && links[0].GetProperty("up").GetBoolean() && links[0].GetProperty("carrying").GetBoolean()
            && links[1].GetProperty("id").GetInt32() == 2 && links[1].GetProperty("up").GetBoolean() && !links[1].GetProperty("carrying").GetBoolean();
    }

    [Fact]
    public async Task TwoLinkNodes_BothLinksUpTrafficOnLowest_SigtermedActiveReplacedBeforeDeadInterval()
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        int[] sync = cluster.Sync;
        Func<NodeConfig, NodeConfig> twoLinks = c => c with
        {
            Cluster = c.Cluster with
            {
                Preemption = true,
                Members = c.Cluster.Members.Select(m => m with
                {
                    Address = "",
                    Links = [new LinkConfig { Id = 1, Address = $"127.0.0.1:{sync[m.Id - 1]}" }, new LinkConfig { Id = 2, Address = $"127.0.0.2:{sync[m.Id - 1]}" }],
                }).ToList(),
            },
        };
        var syncConfig = new SyncConfig { TableCapacity = 16_384, HeartbeatInterval = TimeSpan.FromMilliseconds(200), DeadAfterMissedHeartbeats = 5 };
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Connections = 2000, ChangesPerSecond = 2000 }), syncConfig, twoLinks);
        cluster.Write(2, NodeCluster.NoDataPlane, syncConfig, twoLinks);
        var active = cluster.Start(1);
        cluster.Start(2);

        JsonElement? s1 = null, s2 = null;
        await cluster.WaitUntilAsync(async () =>
        {
            s1 = await cluster.StatusAsync(1);
            s2 = await cluster.StatusAsync(2);
            return s1 is { } a && s2 is { } b && LinksUpOnFirst(a) && LinksUpOnFirst(b)
                && a.GetProperty("membership").GetProperty("state").GetString() == "Active"
                && b.GetProperty("membership").GetProperty("state").GetString() == "Standby"
                && b.GetProperty("counters").GetProperty("updates_applied").GetInt64() > 1000;
        }, "both links up and carrying on link 1, member 2 Standby with 1,000 updates applied", TimeSpan.FromSeconds(60));

        Assert.True(s1 is { } x && LinksUpOnFirst(x), $"member 1 links: {s1?.GetProperty("peers")}");
        Assert.True(s2 is { } y && LinksUpOnFirst(y), $"member 2 links: {s2?.GetProperty("peers")}");
        Assert.Equal("127.0.0.2:" + sync[0], s2!.Value.GetProperty("peers")[0].GetProperty("links")[1].GetProperty("address").GetString());
        var metrics = System.Text.Encoding.UTF8.GetString(await cluster.GetBytesAsync(2, "/metrics"));
        Assert.Contains("clustersync_link_up{peer=\"1\",link=\"2\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("clustersync_link_carrying{peer=\"1\",link=\"1\"} 1", metrics, StringComparison.Ordinal);

        var status = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", cluster.Endpoint(2));
        string table = status.Output;
        Assert.True(status.ExitCode == 0, table);
        Assert.Contains("Sync links", table, StringComparison.Ordinal);
        Assert.Contains("127.0.0.2:" + sync[0], table, StringComparison.Ordinal);

        // SIGTERM the Active: its Down heartbeats make the Standby take over long before the 1 s dead interval. The
        // takeover time by member 2's own clock: when it served as Active (/failover) minus the moment of the signal.
        double terminatedUnixMs = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds;
        await active.TerminateAsync();
        await cluster.WaitForStateAsync(2, "Active", TimeSpan.FromSeconds(10));
        double takeoverMs = (await cluster.GetJsonAsync(2, "/failover"))!.Value.GetProperty("servingUnixMs").GetDouble() - terminatedUnixMs;
        Assert.True(takeoverMs < 700, $"took over {takeoverMs:F0} ms after SIGTERM (dead interval 1000 ms)");
        Assert.Equal(0, await active.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("sent heartbeats with state Down", active.Output, StringComparison.Ordinal);
    }
}
