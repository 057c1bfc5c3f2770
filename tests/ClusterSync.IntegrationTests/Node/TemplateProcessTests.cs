
namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Connection templates between two member processes on loopback (docs/templates.md): the generator's member makes
/// them, the replica holds them, and both count them in <c>/status</c>, <c>clustersync status</c> and <c>/metrics</c>.
/// </summary>
public sealed partial class NodeProcessTests
{
    [Fact]
    public async Task TwoNodeProcesses_ClassesWithTemplates_TemplatesReplicatedAndCountedInStatusAndMetrics()
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        // Every class makes templates from 2 connections of one shape within an hour: the generator's connections
        // repeat their client, server and port often enough.
        var policy = new PolicyOptions();
        policy = policy with
        {
            Classes = [.. policy.Classes.Select(c => c with { Templates = new TemplateOptions { Threshold = 2, WindowSeconds = 3600, LifetimeSeconds = 3600 } })],
        };
        Func<NodeConfig, NodeConfig> adjust = c => c with { Cluster = c.Cluster with { Preemption = true }, Policy = policy };
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 7, Connections = 3000, ChangesPerSecond = 20000, MaxChanges = 15000 }), adjust: adjust);
        cluster.Write(2, NodeCluster.NoDataPlane, adjust: adjust);
        cluster.Start(1);
        cluster.Start(2);

        JsonElement g = default, r = default;
        await cluster.WaitUntilAsync(async () =>
        {
            if (await cluster.StatusAsync(1) is not { } gs || await cluster.StatusAsync(2) is not { } rs)
            {
                return false;
            }

            (g, r) = (gs, rs);
            return gs.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
                && gs.GetProperty("templates").GetProperty("created").GetInt64() > 0
                && rs.GetProperty("templates").GetProperty("live").GetInt32() == gs.GetProperty("templates").GetProperty("live").GetInt32();
        }, "the replica holds every template the generator's member made", s_wait);

        var made = g.GetProperty("templates");
        Assert.True(made.GetProperty("live").GetInt32() > 0, made.ToString());
        Assert.True(made.GetProperty("covered").GetInt64() > 0, made.ToString());
        Assert.True(made.GetProperty("recordsSent").GetInt64() >= made.GetProperty("created").GetInt64(), made.ToString());
        Assert.True(r.GetProperty("templates").GetProperty("recordsApplied").GetInt64() > 0, r.GetProperty("templates").ToString());
        Assert.Equal(made.GetProperty("created").GetInt64(), g.GetProperty("counters").GetProperty("templates_created").GetInt64());
        Assert.Equal(0, r.GetProperty("counters").GetProperty("drops_malformed").GetInt64());

        var metrics = ParsePrometheus(Encoding.UTF8.GetString(await cluster.GetBytesAsync(1, "/metrics")));
        Assert.True(metrics.TryGetValue("clustersync_template_records_sent_total", out double sent) && sent > 0,
            string.Join(", ", metrics.Keys.Where(k => k.Contains("template", StringComparison.Ordinal))));

        var table = await cluster.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", cluster.Endpoint(2));
        Assert.True(table.ExitCode == 0, table.Output);
        Assert.Contains($"{r.GetProperty("templates").GetProperty("live").GetInt32():N0} live", table.Output, StringComparison.Ordinal);
    }
}
