using Xunit.Abstractions;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// High availability with every member a separate OS process (<c>dotnet clustersync.dll node</c>): join by full sync,
/// election, and failover when the Active member is killed with SIGKILL.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class FailoverProcessTests(ITestOutputHelper log) : IDisposable
{
    private const int DeadIntervalMs = 300; // heartbeatInterval 100 ms × deadAfterMissedHeartbeats 3 (the defaults)
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-failover-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task ThreeNodeProcesses_ActiveKilled_StandbyTakesOverWithinDeadIntervalWithEveryAcknowledgedConnectionAndDrivesIt()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);
        var cluster = new Cluster(3);
        var config1 = cluster.Write(_dir, 1, """{"source": "generator", "generator": {"seed": 11, "connections": 10000, "changesPerSecond": 5000, "maxChanges": 20000}}""");
        // Member 2 has a generator too: as a Standby it must not drive; once Active it continues the population it took over.
        var config2 = cluster.Write(_dir, 2, """{"source": "generator", "generator": {"seed": 12, "connections": 10000, "changesPerSecond": 5000, "maxChanges": 5000, "sourceBase": "10.1.0.0"}}""");
        var config3 = cluster.Write(_dir, 3, """{"source": "none"}""");
        NodeProcess? n1 = null, n2 = null, n3 = null;
        try
        {
            // Member 1 (priority 100) first: alone, it is synchronized at once and becomes Active; its generator drives.
            n1 = NodeProcess.Start("node", "--config", config1);
            await WaitUntilAsync(async () => MemberState(await StatusAsync(cluster.Endpoint(1))) == "Active", "member 1 Active", n1);

            // Members 2 and 3 join a running cluster under churn: each pulls a full sync from the Active before Standby.
            n2 = NodeProcess.Start("node", "--config", config2);
            n3 = NodeProcess.Start("node", "--config", config3);
            await WaitUntilAsync(async () => MemberState(await StatusAsync(cluster.Endpoint(2))) == "Standby"
                && MemberState(await StatusAsync(cluster.Endpoint(3))) == "Standby", "members 2 and 3 Standby", n1, n2, n3);
            foreach (int m in new[] { 2, 3 })
            {
                var s = (await StatusAsync(cluster.Endpoint(m)))!.Value;
                Assert.True(s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, $"member {m} reported Standby without a full sync");
            }

            // The criterion: "every connection member 1 had synchronized before the kill". What member 1 synchronized is
            // what its peers acknowledged; a change still in flight when it dies is legitimately lost (it was never
            // synchronized), and the acknowledged set cannot be read from outside while changes keep flowing. So the
            // generator is bounded (maxChanges, 4 s at 5,000/s, during which both members joined): we wait until member 1
            // has nothing pending and both peers acknowledged its last data sequence, read its digest (count + XOR of
            // key/version hashes of its live connections), then SIGKILL it while it is still running (heartbeating,
            // Active). The new Active's committed replica and both survivors' tables must then have exactly that digest.
            JsonElement last = default;
            await WaitUntilAsync(async () =>
            {
                if (await StatusAsync(cluster.Endpoint(1)) is not { } s)
                {
                    return false;
                }

                last = s;
                ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
                return s.GetProperty("dataPlane").GetProperty("finished").GetBoolean()
                    && s.GetProperty("pending").GetInt32() == 0
                    && s.GetProperty("peers").EnumerateArray().All(p => p.GetProperty("ackedThrough").GetUInt64() == sent);
            }, "member 1 finished and fully acknowledged", n1, n2, n3);
            var before = Digest(last);
            Assert.True(before.Count > 5000, $"member 1 holds only {before.Count} connections");
            Assert.Equal(0, (await StatusAsync(cluster.Endpoint(2)))!.Value.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64());

            var clock = Stopwatch.StartNew();
            double killUnixMs = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).TotalMilliseconds;
            n1.Kill();
            JsonElement? active = null;
            int activeMember = 0;
            while (active is null && clock.ElapsedMilliseconds < 5000)
            {
                var s2 = StatusAsync(cluster.Endpoint(2));
                var s3 = StatusAsync(cluster.Endpoint(3));
                foreach (var (m, s) in new[] { (2, await s2), (3, await s3) })
                {
                    if (active is null && MemberState(s) == "Active")
                    {
                        active = s;
                        activeMember = m;
                    }
                }

                if (active is null)
                {
                    await Task.Delay(10);
                }
            }

            long observedMs = clock.ElapsedMilliseconds;
            Assert.True(active is not null, $"no member became Active within 5 s of the kill\n{n2.Output}\n{n3.Output}");
            Assert.Equal(2, activeMember); // priority 90 outranks 80

            // The failover time by member 2's own clock: its "serving" timestamp (taken when it announced Active after
            // committing, /failover) minus the kill time, same machine clock — not this loop's polling delay.
            using var failover = JsonDocument.Parse(await _http.GetStringAsync($"{cluster.Endpoint(2)}/failover"));
            double failoverMs = failover.RootElement.GetProperty("servingUnixMs").GetDouble() - killUnixMs;
            log.WriteLine($"member {activeMember} Active {failoverMs:F0} ms after the kill (seen by polling after {observedMs} ms); {before.Count} connections, digest {before.Xor}");
            Assert.True(failoverMs <= DeadIntervalMs + 200, $"member 2 became Active {failoverMs:F0} ms after the kill");
            var m2 = active!.Value.GetProperty("membership");
            Assert.Equal(1, m2.GetProperty("failovers").GetInt64());
            Assert.Equal(before, Digest(m2.GetProperty("committed")));

            // The survivors' tables: member 2 (Active, no data plane of its own) and member 3 (Standby following it).
            await WaitUntilAsync(async () =>
            {
                var s2 = await StatusAsync(cluster.Endpoint(2));
                var s3 = await StatusAsync(cluster.Endpoint(3));
                return MemberState(s3) == "Standby"
                    && s3!.Value.GetProperty("peers").EnumerateArray().Any(p => p.GetProperty("memberId").GetInt32() == 2 && p.GetProperty("memberState").GetString() == "Active")
                    && s3.Value.GetProperty("peers").EnumerateArray().Any(p => p.GetProperty("memberId").GetInt32() == 1 && p.GetProperty("memberState").GetString() == "Down");
            }, "member 3 Standby following member 2", n2, n3);
            Assert.Equal(0, (await StatusAsync(cluster.Endpoint(3)))!.Value.GetProperty("membership").GetProperty("failovers").GetInt64());

            // Member 2's generator now drives from the taken-over population: when it has finished and member 3 has
            // acknowledged everything, the two tables are identical, and the generator's live set is exactly the table
            // (it would be only its own new connections had it not adopted the 7,000+ taken-over ones).
            JsonElement after = default;
            await WaitUntilAsync(async () =>
            {
                if (await StatusAsync(cluster.Endpoint(2)) is not { } s)
                {
                    return false;
                }

                after = s;
                ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
                if (!s.GetProperty("dataPlane").GetProperty("finished").GetBoolean() || s.GetProperty("pending").GetInt32() != 0
                    || !s.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("alive").GetBoolean()).All(p => p.GetProperty("ackedThrough").GetUInt64() == sent))
                {
                    return false;
                }

                return await StatusAsync(cluster.Endpoint(3)) is { } s3 && Digest(s3) == Digest(s);
            }, "member 2's generator finished and member 3 identical", n2, n3);
            Assert.Equal(after.GetProperty("tableSize").GetInt32(), after.GetProperty("dataPlane").GetProperty("liveConnections").GetInt32());
            Assert.NotEqual(before, Digest(after));
        }
        finally
        {
            foreach (var n in new[] { n1, n2, n3 })
            {
                if (n is not null)
                {
                    await n.DisposeAsync();
                }
            }
        }
    }

    [Fact]
    public async Task NodeJoiningRunningClusterWith100kConnectionsUnderChurn_ReportsStandbyOnlyAfterItsFullSync_EndsIdentical()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);
        var cluster = new Cluster(3);

        // 200,000-connection population: the first 100,000 changes all open connections, the rest churn (≈30 % new,
        // 55 % updates, 15 % destroys), so the table passes 100,000 after 2 s at 50,000 changes/s and keeps changing.
        var config1 = cluster.Write(_dir, 1, """{"source": "generator", "generator": {"seed": 5, "connections": 200000, "changesPerSecond": 50000, "maxChanges": 400000}}""", "{}");
        var config2 = cluster.Write(_dir, 2, """{"source": "none"}""", "{}");
        var config3 = cluster.Write(_dir, 3, """{"source": "none"}""", "{}");
        NodeProcess? n1 = null, n2 = null, n3 = null;
        try
        {
            n1 = NodeProcess.Start("node", "--config", config1);
            await WaitUntilAsync(async () => MemberState(await StatusAsync(cluster.Endpoint(1))) == "Active", "member 1 Active", n1);
            n2 = NodeProcess.Start("node", "--config", config2);
            await WaitUntilAsync(async () => await StatusAsync(cluster.Endpoint(2)) is { } s
                && MemberState(s) == "Standby" && s.GetProperty("tableSize").GetInt32() >= 100_000, "member 2 Standby with 100,000 connections", n1, n2);
            var atJoin = (await StatusAsync(cluster.Endpoint(1)))!.Value;
            Assert.False(atJoin.GetProperty("dataPlane").GetProperty("finished").GetBoolean()); // still churning

            // Member 3 joins; from its first answer on, every /status it gives that says Standby must already count a
            // completed full sync of at least the 100,000 connections held at the join.
            n3 = NodeProcess.Start("node", "--config", config3);
            var seen = new List<string>();
            JsonElement firstStandby = default;
            await WaitUntilAsync(async () =>
            {
                if (await StatusAsync(cluster.Endpoint(3)) is not { } s)
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
            }, "member 3 Standby", n1, n2, n3);
            log.WriteLine($"member 3 states seen: {string.Join(" -> ", seen)}");
            var fullSync = firstStandby.GetProperty("fullSync");
            Assert.True(fullSync.GetProperty("full_sync_received").GetInt64() >= 1, "member 3 reported Standby before any full sync completed");
            Assert.True(fullSync.GetProperty("full_sync_entries_received").GetInt64() >= 100_000,
                $"member 3's full sync carried only {fullSync.GetProperty("full_sync_entries_received").GetInt64()} entries");

            // When the generator stops and member 1's last change is acknowledged, all three tables are identical.
            (long Count, string Xor) d1 = default, d2 = default, d3 = default;
            await WaitUntilAsync(async () =>
            {
                if (await StatusAsync(cluster.Endpoint(1)) is not { } s1)
                {
                    return false;
                }

                ulong sent = s1.GetProperty("lastDataSequence").GetUInt64();
                if (!s1.GetProperty("dataPlane").GetProperty("finished").GetBoolean() || s1.GetProperty("pending").GetInt32() != 0
                    || !s1.GetProperty("peers").EnumerateArray().All(p => p.GetProperty("ackedThrough").GetUInt64() == sent))
                {
                    return false;
                }

                d1 = Digest(s1);
                d2 = Digest((await StatusAsync(cluster.Endpoint(2)))!.Value);
                d3 = Digest((await StatusAsync(cluster.Endpoint(3)))!.Value);
                return d1 == d2 && d1 == d3;
            }, "three identical tables", n1, n2, n3);
            log.WriteLine($"identical: {d1.Count} connections, digest {d1.Xor}");
            Assert.True(d1.Count >= 100_000);
            Assert.Equal("Active", MemberState(await StatusAsync(cluster.Endpoint(1))));
            Assert.Equal("Standby", MemberState(await StatusAsync(cluster.Endpoint(3))));
        }
        finally
        {
            foreach (var n in new[] { n1, n2, n3 })
            {
                if (n is not null)
                {
                    await n.DisposeAsync();
                }
            }
        }
    }

    [Fact]
    public async Task TwoNodeProcessesInLoadSharing_BothActive_EachDrivesItsOwnConnections_TablesEndIdentical()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);
        var cluster = new Cluster(2) { Mode = "load-sharing" };
        var config1 = cluster.Write(_dir, 1, """{"source": "generator", "generator": {"seed": 21, "connections": 5000, "changesPerSecond": 5000, "maxChanges": 10000, "sourceBase": "10.0.0.0"}}""");
        var config2 = cluster.Write(_dir, 2, """{"source": "generator", "generator": {"seed": 22, "connections": 5000, "changesPerSecond": 5000, "maxChanges": 10000, "sourceBase": "10.1.0.0"}}""");
        NodeProcess? n1 = null, n2 = null;
        try
        {
            n1 = NodeProcess.Start("node", "--config", config1);
            n2 = NodeProcess.Start("node", "--config", config2);
            (long Count, string Xor) d1 = default;
            await WaitUntilAsync(async () =>
            {
                var s1 = await StatusAsync(cluster.Endpoint(1));
                var s2 = await StatusAsync(cluster.Endpoint(2));
                if (s1 is null || s2 is null || MemberState(s1) != "Active" || MemberState(s2) != "Active")
                {
                    return false;
                }

                bool Settled(JsonElement s) => s.GetProperty("dataPlane").GetProperty("finished").GetBoolean() && s.GetProperty("pending").GetInt32() == 0
                    && s.GetProperty("peers")[0].GetProperty("ackedThrough").GetUInt64() == s.GetProperty("lastDataSequence").GetUInt64();
                d1 = Digest(s1.Value);
                return Settled(s1.Value) && Settled(s2.Value) && d1 == Digest(s2.Value);
            }, "both Active, finished, identical", n1, n2);
            Assert.True(d1.Count > 4000, $"only {d1.Count} connections");
        }
        finally
        {
            foreach (var n in new[] { n1, n2 })
            {
                if (n is not null)
                {
                    await n.DisposeAsync();
                }
            }
        }
    }

    internal static (long Count, string Xor) Digest(JsonElement statusOrDigest) => ProcessCluster.Digest(statusOrDigest);

    internal static string? MemberState(JsonElement? status) => ProcessCluster.MemberState(status);

    internal Task<JsonElement?> StatusAsync(string endpoint) => StatusAsync(_http, endpoint);

    internal static async Task<JsonElement?> StatusAsync(HttpClient http, string endpoint)
    {
        if (!NodeProcess.ControlReady(endpoint))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync($"{endpoint}/status"));
            return doc.RootElement.Clone();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    internal static Task WaitUntilAsync(Func<Task<bool>> condition, string what, params NodeProcess?[] nodes)
        => WaitUntilAsync(condition, what, TimeSpan.FromSeconds(30), nodes);

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, params NodeProcess?[] nodes)
        => await Wait.UntilAsync(
            condition,
            timeout,
            () => $"timed out waiting for {what}:\n{string.Join("\n----\n", nodes.Where(n => n is not null).Select(n => n!.Output))}",
            () =>
            {
                foreach (var n in nodes)
                {
                    if (n is { HasExited: true })
                    {
                        Assert.Fail($"a node exited ({n.ExitCode}) while waiting for {what}:\n{n.Output}");
                    }
                }
            });

    /// <summary>Ports and configuration files of a loopback cluster; member i has priority 110 - 10 i, all-<c>full</c> policy.</summary>
    internal sealed class Cluster(int members)
    {
        private readonly int[] _sync = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeUdpPort()).ToArray();
        private readonly int[] _fullSync = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeTcpPort()).ToArray();
        private readonly int[] _control = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeTcpPort()).ToArray();

        public string Endpoint(int member) => $"http://127.0.0.1:{_control[member - 1]}";

        public string Mode { get; init; } = "high-availability";

        /// <summary>A plugin transport: its name and each member's address on it (member id → address); null for UDP.</summary>
        public (string Name, Func<int, string> Address)? Transport { get; init; }

        public string Write(string dir, int member, string dataPlane, string sync = """{"tableCapacity": 16384}""")
        {
            var c = CultureInfo.InvariantCulture;
            var list = string.Join(",\n", Enumerable.Range(1, _sync.Length).Select(i =>
                string.Create(c, $$"""      { "id": {{i}}, "address": "127.0.0.1:{{_sync[i - 1]}}", "priority": {{110 - (10 * i)}}, "fullSyncPort": {{_fullSync[i - 1]}}{{(Transport is { } t ? $", \"transportAddress\": \"{t.Address(i)}\"" : "")}} }""")));
            var transport = Transport is { } tr ? $"\"transport\": \"{tr.Name}\", " : "";
            var path = Path.Combine(dir, $"node{member}.json");
            File.WriteAllText(path, string.Create(c, $$"""
                {
                  "cluster": { "keyFile": "cluster.key", {{transport}}"mode": "{{Mode}}", "members": [
                {{list}}
                  ] },
                  "node": { "memberId": {{member}}, "control": { "port": {{_control[member - 1]}} } },
                  "sync": {{sync}},
                  "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
                  "dataPlane": {{dataPlane}}
                }
                """));
            return path;
        }
    }
}
