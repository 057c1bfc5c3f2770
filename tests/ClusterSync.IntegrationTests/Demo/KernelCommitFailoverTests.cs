using ClusterSync.Cli.Bench;

namespace ClusterSync.IntegrationTests.Demo;

/// <summary>
/// Issue 13 item 3, the kernel sink: <c>bench failover --data-plane conntrack</c>'s cluster (three node processes, each
/// in a network namespace of its own, the Standbys committing through the conntrack plugin) with 30 ms heartbeats; the
/// member that takes over commits at least 100,000 connections into its namespace's kernel conntrack table.
/// Root only (namespaces, CAP_NET_ADMIN): skipped with the reason otherwise; CI runs as root.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class KernelCommitFailoverTests(ITestOutputHelper log)
{
    private const int Entries = 100_000;

    [SkippableFact]
    public async Task Promotion_Commits100kIntoKernelConntrack_NoMemberDeclaredDeadNoExtraTakeover_AllInKernel()
    {
        Skip.If(KernelFailover.Unavailable() is not null, KernelFailover.Unavailable());
        var options = new DemoOptions
        {
            // bench failover --entries 105000 --heartbeat-ms 30 --dead-after 3, 1 s of churn at 5,000 changes/s.
            ChurnSeconds = 1, Rate = 5_000, FillRate = 100_000, Connections = 2 * (Entries + 5_000), MinReplica = Entries + 5_000,
            Policy = DemoPolicy.SyncAll, ServiceLifetimes = false,
            HeartbeatInterval = TimeSpan.FromMilliseconds(30), DeadAfterMissedHeartbeats = 3,
            Launcher = new CliLauncher("dotnet", [CliProcess.CliDll()]),
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var (r, doc) = await KernelFailover.MeasureAsync(options, Entries, log.WriteLine, timeout.Token);
        log.WriteLine(JsonSerializer.Serialize(doc));
        long Get(string name) => Convert.ToInt64(doc[name], CultureInfo.InvariantCulture);

        // A false failover before the kill (a member starved on a loaded machine) is not what this test measures.
        Assert.False(r.PrematureTakeover, r.SurvivorsSeen);

        // The kernel holds every entry the plugin committed, and that is the whole replica (nothing refused).
        Assert.Equal(1, Get("kernel_commits"));
        Assert.True(Get("kernel_committed") >= Entries, $"only {Get("kernel_committed")} committed into the kernel");
        Assert.Equal(Get("kernel_committed"), Get("kernel_entries"));
        Assert.Equal(0, Get("kernel_refused"));
        Assert.Equal(r.Committed, Get("kernel_committed") + Get("kernel_unmappable"));
        Assert.True((bool)doc["verified"]);

        // During the commit, heartbeats kept flowing both ways between the survivors (their own logs).
        Assert.Equal(0, Get("survivors_declared_dead"));
        Assert.Equal(0, r.ExtraTakeovers);
        Assert.True(Convert.ToDouble(doc["commit_window_ms"], CultureInfo.InvariantCulture) > 0);
        Assert.Equal(0, r.Tally.Total.LostSynced);

        // The run removed its namespaces (it does on failure too: MeasureAsync disposes them on the way out).
        var (_, list) = BenchHost.RunWithin(60_000, "ip", "netns", "list");
        Assert.DoesNotContain($"csfo-{Environment.ProcessId}-", list, StringComparison.Ordinal);
    }

    [Fact]
    public void MaxGap_CountsGapsOverlappingTheWindowAndTheOpenGapAtItsEnd()
    {
        double[] heard = [0, 30, 60, 200, 230, 260];
        Assert.Equal(140, KernelFailover.MaxGap(heard, 100, 150));   // 60 → 200 spans the window
        Assert.Equal(30, KernelFailover.MaxGap(heard, 210, 260));    // only 200 → 230 → 260
        Assert.Equal(30, KernelFailover.MaxGap(heard, 0, 50));       // 200 starts after the window
        Assert.Equal(240, KernelFailover.MaxGap(heard, 250, 500));   // nothing heard after 260: open to 500
    }
}
