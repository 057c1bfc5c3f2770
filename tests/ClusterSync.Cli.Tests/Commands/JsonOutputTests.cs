using System.Text.Json;
using Xunit.Abstractions;

namespace ClusterSync.Cli.Tests.Commands;

/// <summary>The JSON documents the commands print with <c>--json</c>: one document on stdout, the fields scripts rely on.</summary>
public sealed class JsonOutputTests(ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-cli-json-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonElement Document(CliProcess cli)
    {
        Assert.True(cli.ExitCode == 0, cli.Output);
        using var doc = JsonDocument.Parse(cli.Stdout);
        return doc.RootElement.Clone();
    }

    private static void AssertHas(JsonElement e, params string[] names)
    {
        var have = e.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        Assert.True(names.All(have.Contains), $"missing {string.Join(", ", names.Where(n => !have.Contains(n)))} in {e}");
    }

    [Fact]
    public async Task StatusJson_RunningNode_TheStatusDocument()
    {
        await using var cluster = new NodeCluster(1, log);
        cluster.Write(1, NodeCluster.NoDataPlane);
        cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");

        var status = await cluster.RunAsync(s_timeout, "status", "--json", "--endpoint", cluster.Endpoint(1));
        var s = Document(status);

        AssertHas(s, "memberId", "state", "epoch", "tableSize", "pending", "lastDataSequence", "digest", "counters", "peers", "membership", "dataPlane", "fullSync");
        Assert.Equal(1, s.GetProperty("memberId").GetInt32());
        Assert.Equal("running", s.GetProperty("state").GetString());
        Assert.Equal("Active", s.GetProperty("membership").GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Array, s.GetProperty("peers").ValueKind);
        AssertHas(s.GetProperty("digest"), "count", "xor");
        AssertHas(s.GetProperty("counters"), "updates_sent", "updates_applied", "datagrams_sent");
    }

    [Fact]
    public async Task SoakJson_TwoSeeds_OneObjectWithCountsAndFailingSeeds()
    {
        await using var soak = await CliProcess.RunAsync(s_timeout, "soak", "--seeds", "2", "--json", "--parallel", "1");
        var d = Document(soak);

        Assert.Equal(["seeds", "first_seed", "violations", "failing", "seconds", "seeds_per_second", "failing_seeds"], d.EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, d.GetProperty("seeds").GetInt32());
        Assert.Equal(1, d.GetProperty("first_seed").GetInt32());
        Assert.Equal(0, d.GetProperty("violations").GetInt32());
        Assert.Equal(0, d.GetProperty("failing_seeds").GetArrayLength());
    }

    [Fact]
    public async Task SimulateJson_SmallGeneratedTrace_PoliciesAndBudgetsInTheDocumentedShape()
    {
        var trace = Path.Combine(_dir, "trace.csv");
        await using (var generate = await CliProcess.RunAsync(s_timeout, "generate", "--out", trace, "--days", "0.001", "--rate", "5", "--seed", "3"))
        {
            Assert.True(generate.ExitCode == 0, generate.Output);
            Assert.StartsWith($"wrote {trace}: ", generate.Stdout, StringComparison.Ordinal);
        }

        await using var simulate = await CliProcess.RunAsync(s_timeout, "simulate", "--trace", trace, "--no-frontier", "--json");
        var d = Document(simulate);

        Assert.Equal(["connections", "span_seconds", "policies", "warmup_hours", "guard", "service_classes", "never_sync_class_share", "budgets", "frontier", "best_per_service"],
            d.EnumerateObject().Select(p => p.Name));
        Assert.True(d.GetProperty("connections").GetInt64() > 100, d.ToString());
        var policies = d.GetProperty("policies").EnumerateArray().ToList();
        Assert.Equal(["sync-all", "static-3s", "static-30s", "per-class-static", "oracle"], policies.Take(5).Select(p => p.GetProperty("name").GetString()));
        Assert.All(policies, p => Assert.Equal(["name", "messages", "bytes", "exposure_seconds", "expected_loss"], p.EnumerateObject().Select(x => x.Name)));
        var syncAll = policies[0];
        Assert.Equal(0, syncAll.GetProperty("exposure_seconds").GetDouble());
        Assert.Equal(2 * d.GetProperty("connections").GetInt64(), syncAll.GetProperty("messages").GetInt64()); // a new and a destroy each
        Assert.Contains(policies, p => p.GetProperty("name").GetString()!.StartsWith("adaptive@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SimulateJson_WithTemplates_StaticPoliciesWithoutAndWithTemplates()
    {
        var trace = Path.Combine(_dir, "trace-templates.csv");
        await using (var generate = await CliProcess.RunAsync(s_timeout, "generate", "--out", trace, "--days", "0.001", "--rate", "20", "--seed", "3"))
        {
            Assert.True(generate.ExitCode == 0, generate.Output);
        }

        await using var simulate = await CliProcess.RunAsync(s_timeout, "simulate", "--trace", trace, "--no-frontier", "--json", "--templates", "--template-threshold", "3");
        var d = Document(simulate);

        var rows = d.GetProperty("templates").EnumerateArray().ToList();
        Assert.Equal(["sync-all", "static-3s", "static-30s", "never", "adaptive@0.002"], rows.Select(r => r.GetProperty("name").GetString()));
        Assert.All(rows, r => Assert.Equal(["name", "messages", "exposure_seconds", "messages_with_templates", "exposure_seconds_with_templates", "template_messages", "templates_created", "covered"],
            r.EnumerateObject().Select(x => x.Name)));
        Assert.All(rows.Take(4), r => Assert.True(r.GetProperty("exposure_seconds_with_templates").GetDouble() <= r.GetProperty("exposure_seconds").GetDouble(), r.ToString()));
        Assert.All(rows.Take(4), r => Assert.Equal(r.GetProperty("messages").GetInt64() + r.GetProperty("template_messages").GetInt64(), r.GetProperty("messages_with_templates").GetInt64()));
        Assert.True(rows[4].GetProperty("messages_with_templates").GetInt64() <= rows[4].GetProperty("messages").GetInt64() + rows[4].GetProperty("template_messages").GetInt64(), rows[4].ToString());
        var policies = d.GetProperty("policies").EnumerateArray().ToList();
        Assert.Equal(policies[1].GetProperty("messages").GetInt64(), rows[1].GetProperty("messages").GetInt64()); // static-3s counted alike
    }

    [Fact]
    public async Task PluginsJson_Shipped_ArrayOfPluginsWithNameKindStatus()
    {
        await using var plugins = await CliProcess.RunAsync(s_timeout, "plugins", "--json");
        Assert.True(plugins.ExitCode == 0, plugins.Output);
        using var doc = JsonDocument.Parse(plugins.Stdout[plugins.Stdout.IndexOf('[', StringComparison.Ordinal)..]);

        var list = doc.RootElement.EnumerateArray().ToList();
        Assert.NotEmpty(list);
        Assert.All(list, p => AssertHas(p, "name", "kind", "status"));
        Assert.Contains(list, p => p.GetProperty("name").GetString() == ClusterSync.Node.Configuration.PluginsConfig.DefaultClassifier);
    }
}
