namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Maintenance and manual switchover with real node processes on loopback, driven by the CLI as an operator would:
/// <c>clustersync admin down|up|failover --to N</c> against a member's control endpoint (POST, with the control token).
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class AdminProcessTests(ITestOutputHelper log)
{
    private static readonly TimeSpan s_cli = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AdminDown_ActiveUnderChurn_StandbyTakesOverWithEverySynchronizedConnection_DownMemberStaysOutOfElections_AdminUpRejoinsAsStandby()
    {
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        // Member 1 churns without a bound: the down must synchronize what is pending at that moment, under load.
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 31, Connections = 5000, ChangesPerSecond = 3000 }));
        cluster.Write(2, NodeCluster.NoDataPlane);
        var n1 = cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");
        var n2 = cluster.Start(2);
        await cluster.WaitForStatusAsync(2, s => NodeCluster.MemberState(s) == "Standby" && s.GetProperty("tableSize").GetInt32() > 2000, "member 2 Standby holding member 1's connections");

        // admin down on the Active: member 2 takes over with every connection member 1 held when it stopped serving.
        var down = await Admin(cluster, 1, "down");
        Assert.True(down.ExitCode == 0, down.Output);
        var answer = JsonDocument.Parse(down.Stdout).RootElement;
        Assert.Equal("Done", answer.GetProperty("outcome").GetString());
        Assert.Equal(2, answer.GetProperty("successor").GetInt32());
        var s = await cluster.WaitForStatusesAsync(x => NodeCluster.MemberState(x[0]) == "Maintenance" && NodeCluster.MemberState(x[1]) == "Active",
            "member 1 Maintenance, member 2 Active");
        // Member 1's generator holds since it left the role and member 2 has no source: neither table changes now.
        var held = NodeCluster.Digest(s[0]);
        Assert.True(held.Count > 2000, $"member 1 held only {held.Count} connections");
        Assert.Equal(held, NodeCluster.Digest(s[1].GetProperty("membership").GetProperty("committed")));
        Assert.Equal(held, NodeCluster.Digest(s[1]));
        Assert.Equal(1, s[1].GetProperty("membership").GetProperty("failovers").GetInt64());
        log.WriteLine($"admin down: {held.Count} connections, hand-over {answer.GetProperty("handoverMs").GetDouble():F1} ms, member 2 Active {answer.GetProperty("switchMs").GetDouble():F1} ms later");

        // admin up: back as Standby, and it stays Standby while member 2 serves.
        var up = await Admin(cluster, 1, "up");
        Assert.True(up.ExitCode == 0, up.Output);
        await cluster.WaitForStatusesAsync(x => NodeCluster.MemberState(x[0]) == "Standby" && NodeCluster.MemberState(x[1]) == "Active"
            && PeerState(x[0], 2) == "Active", "member 1 Standby following member 2");
        Assert.True(n1.HasLogged("Member 1: Maintenance -> Standby"), n1.Tail());

        // Down again (a Standby this time: at once), then member 2 dies: member 1 stays out of the election.
        var again = await Admin(cluster, 1, "down");
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.NotEqual(JsonValueKind.Number, JsonDocument.Parse(again.Stdout).RootElement.GetProperty("successor").ValueKind); // a Standby hands nothing over
        await cluster.WaitForStateAsync(1, "Maintenance");
        var before = NodeCluster.Digest((await cluster.StatusAsync(2))!.Value);
        long failovers = (await cluster.StatusAsync(1))!.Value.GetProperty("membership").GetProperty("failovers").GetInt64();
        n2.Kill();
        // Member 1's own view: member 2 not heard for more than three dead intervals, and member 1 still Maintenance.
        var downView = await cluster.WaitForStatusAsync(1, x => PeerLastHeardMs(x, 2) > 1000, "member 1 not hearing member 2 for 1 s");
        Assert.Equal("Maintenance", NodeCluster.MemberState(downView));
        Assert.Equal(failovers, downView.GetProperty("membership").GetProperty("failovers").GetInt64()); // never took over

        // admin up: Standby again, and with no Active alive it takes over with everything.
        var up2 = await Admin(cluster, 1, "up");
        Assert.True(up2.ExitCode == 0, up2.Output);
        var active = await cluster.WaitForStatusAsync(1, x => NodeCluster.MemberState(x) == "Active", "member 1 Active after admin up");
        Assert.Equal(before, NodeCluster.Digest(active.GetProperty("membership").GetProperty("committed")));
        var output = n1.Output;
        int standby = output.LastIndexOf("Member 1: Maintenance -> Standby", StringComparison.Ordinal);
        int promoting = standby < 0 ? -1 : output.IndexOf("Member 1: Standby -> Promoting", standby, StringComparison.Ordinal);
        Assert.True(standby >= 0 && promoting > standby && output.IndexOf("Member 1: Promoting -> Active", promoting, StringComparison.Ordinal) > promoting, n1.Tail());
    }

    [Fact]
    public async Task AdminFailoverTo_LowestRankedStandby_ItTakesOver_HigherRankedStandbyStays_FormerActiveBecomesStandby()
    {
        await using var cluster = new NodeCluster(3, log);
        await cluster.KeygenAsync();
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 32, Connections = 4000, ChangesPerSecond = 3000 }));
        cluster.Write(2, NodeCluster.NoDataPlane);
        cluster.Write(3, NodeCluster.NoDataPlane);
        var n1 = cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");
        var n2 = cluster.Start(2);
        var n3 = cluster.Start(3);
        await cluster.WaitForStatusesAsync(x => NodeCluster.MemberState(x[1]) == "Standby" && NodeCluster.MemberState(x[2]) == "Standby"
            && x[2].GetProperty("tableSize").GetInt32() > 2000, "members 2 and 3 Standby");

        // Member 3 has the lowest priority (90 < 100 < 110): the election alone would never pick it.
        var failover = await Admin(cluster, 1, "failover", "--to", "3");
        Assert.True(failover.ExitCode == 0, failover.Output);
        Assert.Equal(3, JsonDocument.Parse(failover.Stdout).RootElement.GetProperty("successor").GetInt32());
        var s = await cluster.WaitForStatusesAsync(x => NodeCluster.MemberState(x[0]) == "Standby" && NodeCluster.MemberState(x[1]) == "Standby"
            && NodeCluster.MemberState(x[2]) == "Active" && PeerState(x[0], 3) == "Active" && PeerState(x[1], 3) == "Active", "member 3 Active, members 1 and 2 Standby");
        Assert.Equal(NodeCluster.Digest(s[0]), NodeCluster.Digest(s[2].GetProperty("membership").GetProperty("committed")));
        Assert.Equal(0, s[1].GetProperty("membership").GetProperty("failovers").GetInt64());
        Assert.False(n2.HasLogged("Member 2: Standby -> Promoting"), n2.Tail()); // the higher-ranked Standby never even started a takeover
        Assert.True(n3.HasLogged("member 1 handed the Active role over"), n3.Tail());
        Assert.True(n1.HasLogged("Member 1: Maintenance -> Standby"), n1.Tail());
    }

    [Fact]
    public async Task Admin_WithoutTokenUnknownMemberOrNoStandby_RefusedWithExitCodesAndReasons()
    {
        await using var cluster = new NodeCluster(2, log);
        cluster.Write(1, NodeCluster.NoDataPlane);
        cluster.Write(2, NodeCluster.NoDataPlane);
        cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active", TimeSpan.FromSeconds(40));

        var noToken = await cluster.RunAsync(s_cli, "admin", "down", "--endpoint", cluster.Endpoint(1));
        Assert.True(noToken.ExitCode == 1, noToken.Output);
        Assert.Contains("401", noToken.Stderr, StringComparison.Ordinal);

        var unknown = await Admin(cluster, 1, "failover", "--to", "7");
        Assert.True(unknown.ExitCode == 2, unknown.Output);
        Assert.Contains("--to:", unknown.Stderr, StringComparison.Ordinal);

        var alone = await Admin(cluster, 1, "down");
        Assert.True(alone.ExitCode == 1, alone.Output);
        Assert.Contains("no live Standby", alone.Stdout, StringComparison.Ordinal);
        Assert.Equal("Active", NodeCluster.MemberState(await cluster.StatusAsync(1)));

        var toDead = await Admin(cluster, 1, "failover", "--to", "2");
        Assert.True(toDead.ExitCode == 1, toDead.Output);
        Assert.Contains("not a live Standby", toDead.Stdout, StringComparison.Ordinal);
        Assert.Equal("Active", NodeCluster.MemberState(await cluster.StatusAsync(1)));
    }

    private static Task<CliProcess> Admin(NodeCluster cluster, int member, params string[] args)
        => cluster.RunAsync(s_cli, ["admin", .. args, "--endpoint", cluster.Endpoint(member), "--token-file", Path.Combine(cluster.Directory, NodeCluster.TokenFileName), "--json"]);

    private static string? PeerState(JsonElement status, int peer)
        => status.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("memberId").GetInt32() == peer)
            .Select(p => p.GetProperty("alive").GetBoolean() ? p.GetProperty("memberState").GetString() : "Down").FirstOrDefault();

    private static long PeerLastHeardMs(JsonElement status, int peer)
        => status.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("memberId").GetInt32() == peer)
            .Select(p => p.GetProperty("lastHeardMs").ValueKind == JsonValueKind.Number ? p.GetProperty("lastHeardMs").GetInt64() : -1).FirstOrDefault(-1);
}
