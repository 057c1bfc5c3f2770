namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// High availability with every member a separate OS process (<c>dotnet clustersync.dll node</c>): join by full sync,
/// election, and failover when the Active member is killed with SIGKILL.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class FailoverProcessTests(ITestOutputHelper log)
{
    private const int DeadIntervalMs = 300; // heartbeatInterval 100 ms × deadAfterMissedHeartbeats 3 (the defaults)

    [Fact]
    public async Task ThreeNodeProcesses_ActiveKilled_StandbyTakesOverWithinDeadIntervalWithEveryAcknowledgedConnectionAndDrivesIt()
    {
        await using var cluster = new NodeCluster(3, log);
        await cluster.KeygenAsync();
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 11, Connections = 10_000, ChangesPerSecond = 5000, MaxChanges = 20_000 }));
        // Member 2 has a generator too: as a Standby it must not drive; once Active it continues the population it took over.
        cluster.Write(2, NodeCluster.Generator(new GeneratorConfig { Seed = 12, Connections = 10_000, ChangesPerSecond = 5000, MaxChanges = 5000, SourceBase = "10.1.0.0" }));
        cluster.Write(3, NodeCluster.NoDataPlane);
        // Member 1 (priority 100) first: alone, it is synchronized at once and becomes Active; its generator drives.
        var n1 = cluster.Start(1);
        await cluster.WaitUntilAsync(async () => MemberState(await cluster.StatusAsync(1)) == "Active", "member 1 Active");

        // Members 2 and 3 join a running cluster under churn: each pulls a full sync from the Active before Standby.
        cluster.Start(2);
        cluster.Start(3);
        await cluster.WaitUntilAsync(async () => MemberState(await cluster.StatusAsync(2)) == "Standby"
            && MemberState(await cluster.StatusAsync(3)) == "Standby", "members 2 and 3 Standby");
        foreach (int m in new[] { 2, 3 })
        {
            var s = (await cluster.StatusAsync(m))!.Value;
            Assert.True(s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, $"member {m} reported Standby without a full sync");
        }

        // The criterion: "every connection member 1 had synchronized before the kill". What member 1 synchronized is
        // what its peers acknowledged; a change still in flight when it dies is legitimately lost (it was never
        // synchronized), and the acknowledged set cannot be read from outside while changes keep flowing. So the
        // generator is bounded (maxChanges, 4 s at 5,000/s, during which both members joined): we wait until member 1
        // has nothing pending and both peers acknowledged its last data sequence, read its digest (count + XOR of
        // key/version hashes of its live connections), then SIGKILL it while it is still running (heartbeating,
        // Active). The new Active's committed replica and both survivors' tables must then have exactly that digest.
        var last = await cluster.WaitForStatusAsync(1, s => NodeCluster.Finished(s) && NodeCluster.AcknowledgedByAll(s), "member 1 finished and fully acknowledged");
        var before = Digest(last);
        Assert.True(before.Count > 5000, $"member 1 holds only {before.Count} connections");
        Assert.Equal(0, (await cluster.StatusAsync(2))!.Value.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64());

        var clock = Stopwatch.StartNew();
        double killUnixMs = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds;
        n1.Kill();
        JsonElement? active = null;
        int activeMember = 0;
        await Wait.UntilAsync(async () =>
        {
            var s2 = cluster.StatusAsync(2);
            var s3 = cluster.StatusAsync(3);
            foreach (var (m, s) in new[] { (2, await s2), (3, await s3) })
            {
                if (active is null && MemberState(s) == "Active")
                {
                    active = s;
                    activeMember = m;
                }
            }

            return active is not null;
        }, TimeSpan.FromSeconds(5), poll: TimeSpan.FromMilliseconds(10));

        long observedMs = clock.ElapsedMilliseconds;
        Assert.True(active is not null, $"no member became Active within 5 s of the kill\n{cluster.Logs()}");
        Assert.Equal(2, activeMember); // priority 90 outranks 80

        // The failover time by member 2's own clock: its "serving" timestamp (taken when it announced Active after
        // committing, /failover) minus the kill time, same machine clock — not this loop's polling delay.
        var failover = (await cluster.GetJsonAsync(2, "/failover"))!.Value;
        double failoverMs = failover.GetProperty("servingUnixMs").GetDouble() - killUnixMs;
        log.WriteLine($"member {activeMember} Active {failoverMs:F0} ms after the kill (seen by polling after {observedMs} ms); {before.Count} connections, digest {before.Xor}");
        Assert.True(failoverMs <= DeadIntervalMs + 200, $"member 2 became Active {failoverMs:F0} ms after the kill");
        var m2 = active!.Value.GetProperty("membership");
        Assert.Equal(1, m2.GetProperty("failovers").GetInt64());
        Assert.Equal(before, Digest(m2.GetProperty("committed")));

        // The survivors' tables: member 2 (Active, no data plane of its own) and member 3 (Standby following it).
        await cluster.WaitUntilAsync(async () =>
        {
            var s2 = await cluster.StatusAsync(2);
            var s3 = await cluster.StatusAsync(3);
            return MemberState(s3) == "Standby"
                && s3!.Value.GetProperty("peers").EnumerateArray().Any(p => p.GetProperty("memberId").GetInt32() == 2 && p.GetProperty("memberState").GetString() == "Active")
                && s3.Value.GetProperty("peers").EnumerateArray().Any(p => p.GetProperty("memberId").GetInt32() == 1 && p.GetProperty("memberState").GetString() == "Down");
        }, "member 3 Standby following member 2");
        Assert.Equal(0, (await cluster.StatusAsync(3))!.Value.GetProperty("membership").GetProperty("failovers").GetInt64());

        // Member 2's generator now drives from the taken-over population: when it has finished and member 3 has
        // acknowledged everything, the two tables are identical, and the generator's live set is exactly the table
        // (it would be only its own new connections had it not adopted the 7,000+ taken-over ones).
        JsonElement after = default;
        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(2) is { } s && NodeCluster.Finished(after = s) && NodeCluster.Settled(s)
            && await cluster.StatusAsync(3) is { } s3 && Digest(s3) == Digest(s), "member 2's generator finished and member 3 identical");
        Assert.Equal(after.GetProperty("tableSize").GetInt32(), after.GetProperty("dataPlane").GetProperty("liveConnections").GetInt32());
        Assert.NotEqual(before, Digest(after));
    }

    [Fact]
    public async Task NodeJoiningRunningClusterWith100kConnectionsUnderChurn_ReportsStandbyOnlyAfterItsFullSync_EndsIdentical()
    {
        await using var cluster = new NodeCluster(3, log);
        await cluster.KeygenAsync();

        // 200,000-connection population: the first 100,000 changes all open connections, the rest churn (≈30 % new,
        // 55 % updates, 15 % destroys), so the table passes 100,000 after 2 s at 50,000 changes/s and keeps changing.
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 5, Connections = 200_000, ChangesPerSecond = 50_000, MaxChanges = 400_000 }), new SyncConfig());
        cluster.Write(2, NodeCluster.NoDataPlane, new SyncConfig());
        cluster.Write(3, NodeCluster.NoDataPlane, new SyncConfig());
        cluster.Start(1);
        await cluster.WaitUntilAsync(async () => MemberState(await cluster.StatusAsync(1)) == "Active", "member 1 Active");
        cluster.Start(2);
        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(2) is { } s
            && MemberState(s) == "Standby" && s.GetProperty("tableSize").GetInt32() >= 100_000, "member 2 Standby with 100,000 connections");
        var atJoin = (await cluster.StatusAsync(1))!.Value;
        Assert.False(atJoin.GetProperty("dataPlane").GetProperty("finished").GetBoolean()); // still churning

        // Member 3 joins; from its first answer on, every /status it gives that says Standby must already count a
        // completed full sync of at least the 100,000 connections held at the join.
        cluster.Start(3);
        var seen = new List<string>();
        JsonElement firstStandby = default;
        await cluster.WaitUntilAsync(async () =>
        {
            if (await cluster.StatusAsync(3) is not { } s)
            {
                return false;
            }

            var state = MemberState(s)!;
            if (seen.Count == 0 || seen[^1] != state)
            {
                seen.Add(state);
            }

            firstStandby = s;
            return state == "Standby";
        }, "member 3 Standby");
        log.WriteLine($"member 3 states seen: {string.Join(" -> ", seen)}");
        var fullSync = firstStandby.GetProperty("fullSync");
        Assert.True(fullSync.GetProperty("full_sync_received").GetInt64() >= 1, "member 3 reported Standby before any full sync completed");
        Assert.True(fullSync.GetProperty("full_sync_entries_received").GetInt64() >= 100_000,
            $"member 3's full sync carried only {fullSync.GetProperty("full_sync_entries_received").GetInt64()} entries");

        // When the generator stops and member 1's last change is acknowledged, all three tables are identical.
        (long Count, string Xor) d1 = default, d2 = default, d3 = default;
        await cluster.WaitUntilAsync(async () =>
        {
            if (await cluster.StatusAsync(1) is not { } s1 || !NodeCluster.Finished(s1) || !NodeCluster.AcknowledgedByAll(s1))
            {
                return false;
            }

            d1 = Digest(s1);
            d2 = Digest((await cluster.StatusAsync(2))!.Value);
            d3 = Digest((await cluster.StatusAsync(3))!.Value);
            return d1 == d2 && d1 == d3;
        }, "three identical tables");
        log.WriteLine($"identical: {d1.Count} connections, digest {d1.Xor}");
        Assert.True(d1.Count >= 100_000);
        Assert.Equal("Active", MemberState(await cluster.StatusAsync(1)));
        Assert.Equal("Standby", MemberState(await cluster.StatusAsync(3)));
    }

    [Fact]
    public async Task TwoNodeProcessesInLoadSharing_BothActive_EachDrivesItsOwnConnections_TablesEndIdentical()
    {
        await using var cluster = new NodeCluster(2, log, ClusterConfig.ModeLoadSharing);
        await cluster.KeygenAsync();
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 21, Connections = 5000, ChangesPerSecond = 5000, MaxChanges = 10_000, SourceBase = "10.0.0.0" }));
        cluster.Write(2, NodeCluster.Generator(new GeneratorConfig { Seed = 22, Connections = 5000, ChangesPerSecond = 5000, MaxChanges = 10_000, SourceBase = "10.1.0.0" }));
        cluster.Start(1);
        cluster.Start(2);
        (long Count, string Xor) d1 = default;
        await cluster.WaitUntilAsync(async () =>
        {
            var s1 = await cluster.StatusAsync(1);
            var s2 = await cluster.StatusAsync(2);
            if (s1 is null || s2 is null || MemberState(s1) != "Active" || MemberState(s2) != "Active")
            {
                return false;
            }

            static bool Done(JsonElement s) => NodeCluster.Finished(s) && NodeCluster.AcknowledgedByAll(s); // one peer each
            d1 = Digest(s1.Value);
            return Done(s1.Value) && Done(s2.Value) && d1 == Digest(s2.Value);
        }, "both Active, finished, identical");
        Assert.True(d1.Count > 4000, $"only {d1.Count} connections");
    }

    private static (long Count, string Xor) Digest(JsonElement statusOrDigest) => NodeCluster.Digest(statusOrDigest);

    private static string? MemberState(JsonElement? status) => NodeCluster.MemberState(status);
}
