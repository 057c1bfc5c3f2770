using ClusterSync.IntegrationTests.Plugins;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// The state-change hooks (<c>hooks.onActive</c>, <c>onStandby</c>, <c>onFault</c>) of real node processes: shell
/// scripts that record what they were given and when (the machine clock, as the node's own timestamps are).
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class StateHookProcessTests(ITestOutputHelper log)
{
    /// <summary>Appends one line per run: its clock (Unix ms), the event, state, previous state, first argument, reason, commit end.</summary>
    private const string RecordingHook = """
        #!/bin/sh
        now=$(date +%s%3N)
        echo "$now|$CLUSTERSYNC_EVENT|$CLUSTERSYNC_STATE|$CLUSTERSYNC_PREVIOUS_STATE|$1|$CLUSTERSYNC_REASON|$CLUSTERSYNC_COMMIT_ENDED_UNIX_MS" >> "$(dirname "$0")/hooks-$CLUSTERSYNC_MEMBER.log"
        """;

    [Fact]
    public async Task OnActive_FailoverWithSlowDataPlaneCommit_RunsOnlyAfterTheCommitEnded_WithStateAndReason()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestDataPlane.Faulty"), "TestDataPlane.Faulty");
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        string hook = WriteScript(cluster, "hook.sh", RecordingHook);
        var hooks = new HooksConfig { OnActive = [hook, "{state}"], OnStandby = [hook, "{state}"] };
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 41, Connections = 2000, ChangesPerSecond = 4000, MaxChanges = 4000 }),
            adjust: c => c with { Hooks = hooks });
        // Member 2's data plane commits slowly (1.5 s, like a large kernel table): onActive must wait for it.
        cluster.Write(2, NodeCluster.PluginDataPlane("faulty-plane", new { sinkDelayMs = 1500 }), adjust: c => c with
        {
            Hooks = hooks,
            Plugins = new PluginsConfig { Directory = files.Directory, Classifier = "built-in", HotReload = false },
        });
        var n1 = cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");
        var n2 = cluster.Start(2);
        await cluster.WaitForStateAsync(2, "Standby");
        await cluster.WaitForStatusAsync(1, s => NodeCluster.Finished(s) && NodeCluster.AcknowledgedByAll(s), "member 1 finished and acknowledged");

        // Member 1's hooks so far: Standby (first member), then Active, in that order.
        await cluster.WaitUntilAsync(() => Lines(cluster, 1).Count >= 2, "member 1's two hooks ran");
        Assert.Equal(new[] { "onStandby|Standby", "onActive|Active" }, Lines(cluster, 1).Select(l => $"{l[1]}|{l[2]}").ToArray());

        n1.Kill();
        await cluster.WaitUntilAsync(() => Lines(cluster, 2).Any(l => l[1] == "onActive"), "member 2's onActive ran", TimeSpan.FromSeconds(20));
        var active = Lines(cluster, 2).Single(l => l[1] == "onActive");
        var status = (await cluster.StatusAsync(2))!.Value;
        var plugin = status.GetProperty("dataPlane").GetProperty("plugin");
        long commitEnded = plugin.GetProperty("sinkCommitFinishedUnixMs").GetInt64();
        double promoted = (await cluster.GetJsonAsync(2, "/failover"))!.Value.GetProperty("servingUnixMs").GetDouble();
        long hookRan = long.Parse(active[0], CultureInfo.InvariantCulture);
        log.WriteLine($"member 2 Active at {promoted:F0}, plugin commit ended at {commitEnded} (+{commitEnded - promoted:F0} ms), onActive ran at {hookRan} (+{hookRan - commitEnded} ms)");
        Assert.True(commitEnded - promoted >= 1400, $"the plugin's commit took only {commitEnded - promoted:F0} ms");
        Assert.True(hookRan >= commitEnded, $"onActive ran at {hookRan}, before the commit ended at {commitEnded}");
        Assert.Equal(new[] { "Active", "Standby", "Active" }, active[2..5]);
        Assert.Contains("no live active member", active[5], StringComparison.Ordinal);
        Assert.Equal(commitEnded.ToString(CultureInfo.InvariantCulture), active[6]);
        // The script wrote its line before it exited; the node logs the exit after: wait for it.
        await cluster.WaitUntilAsync(() => n2.HasLogged("Hook onActive (Active):") && n2.HasLogged("exited with code 0"), "member 2 logging onActive's exit code");
    }

    [Fact]
    public async Task Hooks_HungHookKilledAtTimeout_FailingHookExitCodeLogged_InOrder_NodeCarriesOn()
    {
        await using var cluster = new NodeCluster(1, log);
        // onStandby hangs (a child process too: the whole tree must go), onActive fails with exit code 3.
        string hang = WriteScript(cluster, "hang.sh", """
            #!/bin/sh
            sleep 300 &
            echo $! > "$(dirname "$0")/sleep.pid"
            wait
            """);
        string fail = WriteScript(cluster, "fail.sh", """
            #!/bin/sh
            echo "cannot move the route" >&2
            exit 3
            """);
        cluster.Write(1, NodeCluster.NoDataPlane, adjust: c => c with
        {
            Hooks = new HooksConfig { OnStandby = [hang], OnActive = [fail], Timeout = TimeSpan.FromSeconds(1) },
        });
        var n1 = cluster.Start(1);
        await cluster.WaitUntilAsync(() => n1.HasLogged("Hook onActive (Active):"), "onActive ran after the hung onStandby", TimeSpan.FromSeconds(40));

        var output = n1.Output;
        int timedOut = output.IndexOf("Hook onStandby (Standby):", StringComparison.Ordinal);
        int activeStarted = output.IndexOf("Hook onActive: started", StringComparison.Ordinal);
        Assert.True(timedOut >= 0 && output.IndexOf("timed out after 1 s", timedOut, StringComparison.Ordinal) > timedOut, n1.Tail());
        Assert.True(activeStarted > timedOut, $"onActive started before the hung onStandby was killed\n{n1.Tail()}");
        Assert.Contains("exited with code 3", output, StringComparison.Ordinal);
        Assert.Contains("cannot move the route", output, StringComparison.Ordinal);

        // The hung hook's child was killed with it; the node runs on, Active and healthy.
        int pid = int.Parse(File.ReadAllText(Path.Combine(cluster.Directory, "sleep.pid")).Trim(), CultureInfo.InvariantCulture);
        await cluster.WaitUntilAsync(() => Gone(pid), "the hung hook's child process gone (or a zombie)");
        Assert.Equal("Active", NodeCluster.MemberState(await cluster.StatusAsync(1)));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var health = await http.GetAsync($"{cluster.Endpoint(1)}/healthz");
        Assert.Equal(200, (int)health.StatusCode);
        Assert.False(n1.HasExited);
    }

    [Fact]
    public async Task KeepalivedTrackExample_FollowsTheActiveAcrossAnAdminFailover()
    {
        await using var cluster = new NodeCluster(2, log);
        string script = Path.Combine(CliProcess.RepositoryRoot(), "examples", "keepalived", "clustersync-track.sh");
        string Track(int m) => Path.Combine(cluster.Directory, $"keepalived-track-{m}");
        string? Read(int m) => File.Exists(Track(m)) ? File.ReadAllText(Track(m)).Trim() : null;
        for (int m = 1; m <= 2; m++)
        {
            string[] hook = [script, Track(m)];
            cluster.Write(m, NodeCluster.NoDataPlane, adjust: c => c with { Hooks = new HooksConfig { OnActive = hook, OnStandby = hook, OnFault = hook } });
        }

        cluster.Start(1);
        await cluster.WaitUntilAsync(() => Read(1) == "1", "member 1's track file 1 (Active)", TimeSpan.FromSeconds(40));
        var n2 = cluster.Start(2);
        await cluster.WaitUntilAsync(() => Read(2) == "0", "member 2's track file 0 (Standby)");

        await using var failover = await cluster.RunAsync(TimeSpan.FromSeconds(60), "admin", "failover", "--to", "2", "--endpoint", cluster.Endpoint(1),
            "--token-file", Path.Combine(cluster.Directory, NodeCluster.TokenFileName));
        Assert.True(failover.ExitCode == 0, failover.Output);
        await cluster.WaitUntilAsync(() => Read(2) == "1" && Read(1) == "0", "the track files follow the Active to member 2");
        Assert.Equal("Active", NodeCluster.MemberState(await cluster.StatusAsync(2)));
        await cluster.WaitUntilAsync(() => n2.HasLogged($"keepalived track file {Track(2)} = 1"), "member 2 logging the script's output");
    }

    /// <summary>No such process, or only its zombie left (killed; its new parent has not reaped it yet).</summary>
    private static bool Gone(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    internal static string WriteScript(NodeCluster cluster, string name, string text)
    {
        string path = Path.Combine(cluster.Directory, name);
        File.WriteAllText(path, text.ReplaceLineEndings("\n") + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    private static List<string[]> Lines(NodeCluster cluster, int member)
    {
        string path = Path.Combine(cluster.Directory, $"hooks-{member}.log");
        return File.Exists(path) ? [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => l.Split('|'))] : [];
    }
}
