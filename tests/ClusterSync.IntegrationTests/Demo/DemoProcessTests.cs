namespace ClusterSync.IntegrationTests.Demo;

/// <summary>
/// <c>clustersync demo</c>, <c>bench failover</c> and the failover acceptance: three <c>clustersync node</c> OS
/// processes on loopback, the Active SIGKILLed while the data plane streams changes into it.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class DemoProcessTests(ITestOutputHelper log)
{
    private const double DeadIntervalMs = 300; // heartbeatInterval 100 ms × deadAfterMissedHeartbeats 3 (the defaults)

    [Fact]
    public async Task KillMinus9UnderChurn_StandbyActiveWithinDeadIntervalPlus200ms_EverySynchronizedConnectionCommitted()
    {
        var options = new DemoOptions
        {
            ChurnSeconds = 3,
            Rate = 6000,
            Connections = 20_000,
            Policy = DemoPolicy.SyncAll,
            ServiceLifetimes = false,
            Launcher = new CliLauncher("dotnet", [CliProcess.CliDll()]),
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var r = await new DemoRunner(options, log.WriteLine).RunAsync(timeout.Token);
        var t = r.Tally.Total;
        log.WriteLine($"failover {r.FailoverMs} ms (death seen {r.DetectionMs} ms), {r.ChangesPerSecondAtKill} changes/s at the kill, alive {t.Alive}, synced {t.Synced}, committed {r.Committed}, lost synced {t.LostSynced}");

        Assert.True(r.ChangesPerSecondAtKill >= 5000, $"only {r.ChangesPerSecondAtKill} changes/s in the second before the kill");
        Assert.Equal(2, r.NewActive); // priority 90 outranks 80
        Assert.True(r.FailoverMs <= DeadIntervalMs + 200, $"member 2 served {r.FailoverMs} ms after the kill");
        Assert.True(r.CapturedBeforePromotion);
        Assert.False(r.PrematureTakeover, $"a false failover before the kill: {r.SurvivorsSeen}");
        // Not vacuous: with every connection synchronized at once, all but the few still queued or in flight at the
        // kill were held by the survivors, and every one of those is in the new Active's committed table.
        Assert.True(t.Alive > 10_000, $"only {t.Alive} connections alive");
        Assert.True(t.Synced >= t.Alive * 0.95, $"only {t.Synced} of {t.Alive} synchronized");
        Assert.Equal(0, t.LostSynced);
        Assert.True(r.Committed >= t.Synced);
    }

    [Fact]
    public async Task Demo_Json_AdaptiveByDefault_ExitsZeroWithShippedModelAndCheaperThanSyncAll()
    {
        await using var run = await CliProcess.RunAsync(TimeSpan.FromSeconds(90), "demo", "--json", "--seconds", "4");
        string output = run.Output;
        int code = run.ExitCode;
        log.WriteLine(output);
        Assert.True(code == 0, output);
        var d = JsonDocument.Parse(output.Split('\n').Last(l => l.StartsWith('{'))).RootElement;
        long Get(string name) => d.GetProperty(name).GetInt64();

        AssertCommonFields(d);
        Assert.Equal("adaptive", d.GetProperty("policy").GetString());
        Assert.Equal("lifetime", d.GetProperty("model").GetString());
        Assert.Equal("shipped", d.GetProperty("model_source").GetString());
        Assert.Equal("service-mix lifetimes", d.GetProperty("workload").GetString());
        var decisions = d.GetProperty("decisions");
        Assert.True(decisions.GetProperty("now").GetInt64() + decisions.GetProperty("delayed").GetInt64() + decisions.GetProperty("never").GetInt64() > 0, decisions.ToString());

        // Adaptive decisions cost fewer messages than synchronizing every change; the offline static 3 s count is a
        // count of the same changes (at most one message per change plus one announcement per connection).
        long messages = Get("messages"), syncAll = Get("messages_sync_all");
        Assert.True(messages > 0 && messages < syncAll, $"messages {messages}, sync-all {syncAll}");
        long static3 = Get("messages_static_3s");
        Assert.InRange(static3, 1, Get("changes_fed") + Get("alive_at_failover"));
        Assert.InRange(Get("exposed_static_3s"), 0, Get("alive_at_failover"));

        // Never-skip (mission-critical) connections are synchronized at once whatever the model says.
        var critical = d.GetProperty("by_class").GetProperty("mission-critical");
        Assert.True(critical.GetProperty("alive").GetInt32() > 0);
        Assert.True(critical.GetProperty("synced").GetInt32() >= critical.GetProperty("alive").GetInt32() * 0.9, critical.ToString());
    }

    [Fact]
    public async Task Demo_JsonStaticPolicy_ClassesBehaveAsConfigured()
    {
        await using var run = await CliProcess.RunAsync(TimeSpan.FromSeconds(90), "demo", "--json", "--seconds", "4", "--policy", "static");
        string output = run.Output;
        int code = run.ExitCode;
        log.WriteLine(output);
        Assert.True(code == 0, output);
        var d = JsonDocument.Parse(output.Split('\n').Last(l => l.StartsWith('{'))).RootElement;

        AssertCommonFields(d);
        Assert.Equal("static", d.GetProperty("policy").GetString());
        Assert.Equal("none", d.GetProperty("model").GetString());
        long messages = d.GetProperty("messages").GetInt64(), syncAll = d.GetProperty("messages_sync_all").GetInt64();
        Assert.True(messages > 0 && messages < syncAll, $"messages {messages}, sync-all {syncAll}");

        // The static policy's classes: never-sync connections are never synchronized, mission-critical ones at once,
        // short-lived ones only after 3 s of life.
        var classes = d.GetProperty("by_class");
        var nonSync = classes.GetProperty("non-sync");
        Assert.True(nonSync.GetProperty("alive").GetInt32() > 0);
        Assert.Equal(0, nonSync.GetProperty("synced").GetInt32());
        var critical = classes.GetProperty("mission-critical");
        Assert.True(critical.GetProperty("synced").GetInt32() >= critical.GetProperty("alive").GetInt32() * 0.9);
        var shortLived = classes.GetProperty("short-lived");
        Assert.True(shortLived.GetProperty("synced").GetInt32() < shortLived.GetProperty("alive").GetInt32());
    }

    [Fact]
    public async Task Demo_UnknownPolicy_ExitsTwoNamingTheOption()
    {
        await using var run = await CliProcess.RunAsync(TimeSpan.FromSeconds(30), "demo", "--policy", "sometimes");
        string output = run.Output;
        int code = run.ExitCode;
        Assert.Equal(2, code);
        Assert.Contains("--policy: expected adaptive, static or sync-all", output, StringComparison.Ordinal);
    }

    /// <summary>The fields every demo summary has, and how they add up.</summary>
    private static void AssertCommonFields(JsonElement d)
    {
        long Get(string name) => d.GetProperty(name).GetInt64();
        long alive = Get("alive_at_failover"), synced = Get("synced_at_failover"), preserved = Get("preserved");
        Assert.Equal(0, Get("lost_synced"));
        Assert.True(alive > 1000, $"alive {alive}");
        Assert.True(synced <= alive && preserved <= alive && preserved >= synced, $"alive {alive}, synced {synced}, preserved {preserved}");
        Assert.Equal(alive - preserved, Get("lost_unsynced"));
        Assert.Equal(alive - synced, Get("exposed_at_failover"));
        double failoverMs = d.GetProperty("failover_ms").GetDouble();
        Assert.InRange(failoverMs, DeadIntervalMs - 100, 5000);
        var classes = d.GetProperty("by_class");
        Assert.Equal(alive, classes.EnumerateObject().Sum(c => c.Value.GetProperty("alive").GetInt64()));
        Assert.Equal(alive - synced, classes.EnumerateObject().Sum(c => c.Value.GetProperty("exposed").GetInt64()));
    }

    [Fact]
    public async Task BenchFailover_Json_PrintsFailoverMsAndNoSynchronizedLoss()
    {
        await using var run = await CliProcess.RunAsync(TimeSpan.FromSeconds(120), "bench", "failover", "--json");
        string output = run.Output;
        int code = run.ExitCode;
        log.WriteLine(output);
        Assert.True(code == 0, output);
        var d = JsonDocument.Parse(output.Split('\n').Last(l => l.StartsWith('{'))).RootElement;

        Assert.Equal(0, d.GetProperty("lost_synced").GetInt32());
        Assert.True(d.GetProperty("committed").GetInt32() >= 100_000);
        double failoverMs = d.GetProperty("failover_ms").GetDouble();
        Assert.True(failoverMs >= d.GetProperty("detection_ms").GetDouble() && failoverMs > 0, output);
    }

    [Fact]
    public async Task Demo_Sigterm_StopsItsNodeProcessesAndRemovesItsDirectory()
    {
        await using var demo = CliProcess.Start("demo", "--seconds", "60");
        string? dir = null;
        await Wait.UntilAsync(() => Task.FromResult(demo.HasExited || demo.HasLogged("data plane:")), TimeSpan.FromSeconds(60));

        var output = demo.Output;
        Assert.True(output.Contains("data plane:", StringComparison.Ordinal), output);
        dir = System.Text.RegularExpressions.Regex.Match(output, @"in (/\S*clustersync-demo-\S+)").Groups[1].Value;
        Assert.True(Directory.Exists(dir), $"no directory '{dir}' in: {output}");
        Assert.Equal(3, NodesUsing(dir).Count);

        await demo.TerminateAsync();
        int code = await demo.WaitForExitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(1, code);
        Assert.Contains("interrupted", demo.Output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir), $"{dir} is still there");
        Assert.Empty(NodesUsing(dir));
    }

    /// <summary>Processes whose command line names a file in <paramref name="dir"/> (the demo's node configurations).</summary>
    private static List<int> NodesUsing(string dir)
    {
        var found = new List<int>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), out int pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(" node ", StringComparison.Ordinal) && cmdline.Contains(dir, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}
