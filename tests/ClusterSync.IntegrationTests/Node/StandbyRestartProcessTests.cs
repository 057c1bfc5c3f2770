namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Issue 14, acceptance: "restart a Standby 20 times under churn → replication never stalls, every Standby identical to
/// the Active after each" — as a process test: three <c>clustersync node</c> processes on loopback (encrypted, full
/// sync over TCP), member 1's built-in generator creating, updating and destroying connections, and the two Standbys
/// SIGKILLed and started again in turn, 20 times.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class StandbyRestartProcessTests(ITestOutputHelper log)
{
    private const int Restarts = 20;

    /// <summary>Bound on a live peer's replication lag (the age of its oldest unacknowledged datagram), as configured.</summary>
    private const int MaxReplicationLagMs = 5000;

    // Both kinds of restart: the Active judges a Standby dead after 2 s (100 ms × 20), longer than a kill and a new
    // process take, so most restarts reach it as a new epoch of a peer it still holds alive (bug 1's path: the old
    // life's acknowledgements and window must go); every fifth round waits for the Active to see the Standby Down
    // first. The Standbys judge the Active after 600 ms: a restarted member's Init lasts that long. Anti-entropy
    // checks every 2 s, so a divergence that delta and full sync missed would be repaired (and counted) within a round.
    private static readonly SyncConfig s_syncActive = new() { TableCapacity = 65_536, HeartbeatInterval = TimeSpan.FromMilliseconds(100), DeadAfterMissedHeartbeats = 20, MaxReplicationLag = TimeSpan.FromSeconds(5), AntiEntropyInterval = TimeSpan.FromSeconds(2), AntiEntropySettle = TimeSpan.FromMilliseconds(500) };
    private static readonly SyncConfig s_syncStandby = new() { TableCapacity = 65_536, HeartbeatInterval = TimeSpan.FromMilliseconds(100), DeadAfterMissedHeartbeats = 6, MaxReplicationLag = TimeSpan.FromSeconds(5), AntiEntropyInterval = TimeSpan.FromSeconds(2), AntiEntropySettle = TimeSpan.FromMilliseconds(500) };

    // Member 1 starts alone: it waits aloneAfter (default 10 s; at least three of its dead intervals) for a
    // synchronized peer before it starts as the first member.
    private static readonly Func<NodeConfig, NodeConfig> s_clusterActive = c => c with { Cluster = c.Cluster with { AloneAfter = TimeSpan.FromSeconds(6) } };
    private static readonly Func<NodeConfig, NodeConfig> s_clusterStandby = c => c with { Cluster = c.Cluster with { AloneAfter = TimeSpan.FromSeconds(2) } };

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task StandbySigkilledAndRestarted20TimesUnderChurn_FullSyncBeforeStandbyEachTime_ReplicationNeverStalls_EveryStandbyIdenticalAfterEach()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = new NodeCluster(3, log);
        await cluster.KeygenAsync();

        // A population of 3,000 at 3,000 changes/s: full after a second, then ≈30 % new connections, 55 % updates and
        // 15 % destroys, so every round sees creates and destroys while a Standby is down and while it joins.
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 41, Connections = 3000, ChangesPerSecond = 3000 }), s_syncActive, s_clusterActive);
        cluster.Write(2, NodeCluster.NoDataPlane, s_syncStandby, s_clusterStandby);
        cluster.Write(3, NodeCluster.NoDataPlane, s_syncStandby, s_clusterStandby);
        cluster.Start(1);
        await cluster.WaitUntilAsync(async () => NodeCluster.MemberState(await cluster.StatusAsync(1)) == "Active", "member 1 Active", s_timeout);
        await cluster.WaitUntilAsync(() => Task.FromResult(cluster[1]!.Output.Contains(
            "Member 1: starting synchronized (first member): no synchronized peer heard for 6000 ms", StringComparison.Ordinal)), "member 1 first after cluster.aloneAfter", s_timeout);
        cluster.Start(2);
        cluster.Start(3);
        await cluster.WaitUntilAsync(async () => NodeCluster.MemberState(await cluster.StatusAsync(2)) == "Standby"
            && NodeCluster.MemberState(await cluster.StatusAsync(3)) == "Standby", "members 2 and 3 Standby", s_timeout);
        var epochs = new Dictionary<int, List<ulong>>
        {
            [2] = [Epoch((await cluster.StatusAsync(2))!.Value)],
            [3] = [Epoch((await cluster.StatusAsync(3))!.Value)],
        };
        // Member 1 took the Active role once, at the start (counted as its takeover); it must keep it, uncontested.
        long failoversAtStart = (await cluster.StatusAsync(1))!.Value.GetProperty("membership").GetProperty("failovers").GetInt64();
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: cluster formed");

        var lag = new LagWatch();
        bool sawDestroys = false;
        int restartsSeenAlive = 0; // rounds where no look at the Active showed the victim Down: its new life replaced a live old one
        for (int restart = 1; restart <= Restarts; restart++)
        {
            int victim = restart % 2 == 0 ? 2 : 3;
            int steady = 5 - victim;
            string round = $"restart {restart} (member {victim})";

            // Churn goes on before the kill: at least 1,000 more changes since the last round.
            long submitted = Submitted((await cluster.StatusAsync(1))!.Value);
            await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s && lag.Sample(s, round)
                && Submitted(s) >= submitted + 1000, $"{round}: 1,000 more changes", s_timeout);

            cluster[victim]!.Kill();
            await cluster[victim]!.WaitForExitAsync(TimeSpan.FromSeconds(10));
            ulong sentAtKill = (await cluster.StatusAsync(1))!.Value.GetProperty("lastDataSequence").GetUInt64();
            bool afterDown = restart % 5 == 0;
            if (afterDown)
            {
                await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s && lag.Sample(s, round)
                    && !Peer(s, victim).GetProperty("alive").GetBoolean(), $"{round}: the Active sees member {victim} Down", s_timeout);
            }

            cluster.Start(victim);

            // The restarted member: never Active, and from its first Standby answer on a completed full sync (the join
            // pull from the Active, logged before Syncing -> Standby). Meanwhile the Active keeps replicating to the
            // steady Standby: it acknowledges past what the Active had sent at the kill.
            var seen = new List<string>();
            JsonElement firstStandby = default;
            bool steadyAdvanced = false;
            bool sawDown = afterDown;
            await cluster.WaitUntilAsync(async () =>
            {
                if (await cluster.StatusAsync(1) is { } s1 && lag.Sample(s1, round))
                {
                    steadyAdvanced |= Peer(s1, steady).GetProperty("ackedThrough").GetUInt64() > sentAtKill;
                    sawDown |= !Peer(s1, victim).GetProperty("alive").GetBoolean();
                }

                if (await cluster.StatusAsync(victim) is not { } s)
                {
                    return false;
                }

                firstStandby = s;
                return NodeCluster.TrackState(s, seen) == "Standby";
            }, $"{round}: Standby again", s_timeout);
            Assert.DoesNotContain("Active", seen);
            Assert.True(firstStandby.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1,
                $"{round}: reported Standby before any full sync completed (states {string.Join(" -> ", seen)})");
            // The log lines travel through a pipe and may trail the /status answer: wait for the transition's line.
            string standbyLine = $"Member {victim}: Syncing -> Standby";
            await cluster.WaitUntilAsync(() => Task.FromResult(cluster[victim]!.Output.Contains(standbyLine, StringComparison.Ordinal)), $"{round}: the Standby transition logged", s_timeout);
            string output = cluster[victim]!.Output;
            Assert.DoesNotContain("first member", output, StringComparison.Ordinal);
            int joined = output.IndexOf($"Member {victim} joined: full sync from member 1 (Active)", StringComparison.Ordinal);
            int standbyAt = output.IndexOf(standbyLine, StringComparison.Ordinal);
            Assert.True(joined >= 0 && standbyAt > joined, $"{round}: no completed join pull from the Active logged before Standby:\n{output}");

            // A new life: an epoch newer than every earlier life's, and the one the Active now holds for it.
            ulong epoch = Epoch(firstStandby);
            Assert.True(epoch > epochs[victim].Max(), $"{round}: epoch {epoch} is not newer than the earlier lives' ({string.Join(", ", epochs[victim])})");
            epochs[victim].Add(epoch);

            // Replication never stalls: under continued churn the Active's acknowledged sequence passes what it had
            // sent when the restarted member became Standby, for both Standbys (the new life's acks, not the old one's).
            ulong sentAtStandby = (await cluster.StatusAsync(1))!.Value.GetProperty("lastDataSequence").GetUInt64();
            await cluster.WaitUntilAsync(async () =>
            {
                if (await cluster.StatusAsync(1) is not { } s1 || !lag.Sample(s1, round))
                {
                    return false;
                }

                steadyAdvanced |= Peer(s1, steady).GetProperty("ackedThrough").GetUInt64() > sentAtKill;
                var v = Peer(s1, victim);
                return v.GetProperty("epoch").GetUInt64() == epoch && v.GetProperty("alive").GetBoolean()
                    && v.GetProperty("ackedThrough").GetUInt64() > sentAtStandby
                    && Peer(s1, steady).GetProperty("ackedThrough").GetUInt64() > sentAtStandby;
            }, $"{round}: the Active's acknowledged sequence advancing for both Standbys past {sentAtStandby}", s_timeout);
            Assert.True(steadyAdvanced, $"{round}: member {steady} acknowledged nothing new while member {victim} restarted");
            restartsSeenAlive += sawDown ? 0 : 1;

            // Every Standby identical to the Active: hold the churn, wait until the Active's last change is acknowledged
            // and the three digests (count + XOR of key/version hashes of the live connections) agree.
            await cluster.PostAsync(1, "/generator/pause");
            (long Count, string Xor) d1 = default, d2 = default, d3 = default;
            await cluster.WaitUntilAsync(async () =>
            {
                if (await cluster.StatusAsync(1) is not { } s1 || !s1.GetProperty("dataPlane").GetProperty("paused").GetBoolean() || !NodeCluster.Settled(s1))
                {
                    return false;
                }

                sawDestroys |= s1.GetProperty("tableEntries").GetInt32() > s1.GetProperty("tableSize").GetInt32(); // tombstones
                d1 = NodeCluster.Digest(s1);
                d2 = await cluster.StatusAsync(2) is { } s2 ? NodeCluster.Digest(s2) : default;
                d3 = await cluster.StatusAsync(3) is { } s3 ? NodeCluster.Digest(s3) : default;
                return d1 == d2 && d1 == d3;
            }, $"{round}: three identical tables", s_timeout);
            Assert.True(d1.Count > 0);
            log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: {round}: {(sawDown ? "restarted after Down" : "restarted while still alive to the Active")}, states {string.Join(" -> ", seen)}, epoch {epoch}, identical at {d1.Count} connections ({d1.Xor})");
            await cluster.PostAsync(1, "/generator/resume");
        }

        var end = (await cluster.StatusAsync(1))!.Value;
        Assert.Equal("Active", NodeCluster.MemberState(end));
        Assert.Equal(failoversAtStart, end.GetProperty("membership").GetProperty("failovers").GetInt64());
        foreach (int m in new[] { 2, 3 })
        {
            var s = (await cluster.StatusAsync(m))!.Value;
            Assert.Equal("Standby", NodeCluster.MemberState(s));
            Assert.Equal(0, s.GetProperty("membership").GetProperty("failovers").GetInt64());
        }

        Assert.True(end.GetProperty("counters").GetProperty("peer_restarts").GetInt64() >= Restarts, "the Active did not see every new life");
        Assert.True(sawDestroys, "the churn never destroyed a connection");
        foreach (int m in new[] { 2, 3 })
        {
            // Each member recorded its current life's epoch (node.stateDirectory: here the configuration's directory).
            Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"clustersync-epoch v1 member={m} epoch={epochs[m][^1]}\n"),
                File.ReadAllText(Path.Combine(cluster.Directory, $"clustersync-member{m}.epoch")));
        }

        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s in all; {restartsSeenAlive} of {Restarts} restarts reached the Active before it judged the old life dead; largest replication lag seen {lag.MaxMs} ms, {lag.MaxDatagrams} datagrams");
    }

    private static ulong Epoch(JsonElement status) => status.GetProperty("epoch").GetUInt64();

    private static long Submitted(JsonElement status) => status.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64();

    private static JsonElement Peer(JsonElement status, int member)
        => status.GetProperty("peers").EnumerateArray().Single(p => p.GetProperty("memberId").GetInt32() == member);

    /// <summary>Every look at the Active checks that no live peer's replication lag passed the bound (and keeps the largest seen).</summary>
    private sealed class LagWatch
    {
        public long MaxMs { get; private set; }

        public long MaxDatagrams { get; private set; }

        public bool Sample(JsonElement active, string round)
        {
            Assert.True(active.TryGetProperty("replicationLagFailure", out var failure) is false || failure.ValueKind == JsonValueKind.Null,
                $"{round}: the Active reports a replication lag failure: {failure}");
            foreach (var p in active.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("alive").GetBoolean()))
            {
                long ms = p.GetProperty("replicationLagMs").GetInt64();
                MaxMs = Math.Max(MaxMs, ms);
                MaxDatagrams = Math.Max(MaxDatagrams, p.GetProperty("replicationLagDatagrams").GetInt64());
                Assert.True(ms <= MaxReplicationLagMs && !p.GetProperty("lagging").GetBoolean(),
                    string.Create(CultureInfo.InvariantCulture, $"{round}: member {p.GetProperty("memberId").GetInt32()}'s replication lag {ms} ms passed {MaxReplicationLagMs} ms"));
            }

            return true;
        }
    }
}
