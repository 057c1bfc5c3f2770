namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Issue "Cluster lifecycle", acceptance: "load sharing: ownership is identical for both directions of every
/// connection, and when one of 4 members dies only its connections change owner" — four <c>clustersync node</c>
/// OS processes in <c>load-sharing</c> mode, each generator originating only the connections its member owns.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class LoadSharingProcessTests(ITestOutputHelper log)
{
    private static readonly int[] s_all = [1, 2, 3, 4];

    [Fact]
    public async Task FourCliProcessesInLoadSharing_OwnershipSymmetricAndRouted_OneKilled_OnlyItsConnectionsMoveToCommittedSurvivors()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = new NodeCluster(4, log, ClusterConfig.ModeLoadSharing);
        await cluster.KeygenAsync();
        // Each member's generator starts held, so every connection is opened under the full owner set {1,2,3,4}; it
        // opens only connections its member owns (population 8,000: ~4,000 opened, then churn with destroys).
        // A 1 s dead interval: four processes on 2 shared cores can miss 300 ms of heartbeats now and then, and a
        // member wrongly declared dead moves its connections for a moment; this test is about where they move.
        foreach (int m in s_all)
        {
            cluster.Write(m,
                NodeCluster.Generator(new GeneratorConfig { Seed = 60 + m, Connections = 8000, ChangesPerSecond = 2500, MaxChanges = 10_000, Paused = true, SourceBase = string.Create(CultureInfo.InvariantCulture, $"10.{m}.0.0") }),
                new SyncConfig { TableCapacity = 65_536, DeadAfterMissedHeartbeats = 10 });
        }

        foreach (int m in s_all)
        {
            cluster.Start(m);
        }

        await cluster.WaitUntilAsync(async () =>
        {
            foreach (int m in s_all)
            {
                if (await cluster.GetJsonAsync(m, "/ownership") is not { } o || o.GetProperty("state").GetString() != "Active"
                    || o.GetProperty("owners").GetArrayLength() != 4)
                {
                    return false;
                }
            }

            return true;
        }, "four members Active, each with owners {1,2,3,4}", TimeSpan.FromSeconds(60));
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: four members Active");

        foreach (int m in s_all)
        {
            await cluster.PostAsync(m, "/generator/resume");
        }

        await cluster.WaitUntilAsync(async () =>
        {
            var digests = new HashSet<(long, string)>();
            foreach (int m in s_all)
            {
                if (await cluster.StatusAsync(m) is not { } s || !s.GetProperty("dataPlane").GetProperty("finished").GetBoolean() || !NodeCluster.Settled(s))
                {
                    return false;
                }

                digests.Add(NodeCluster.Digest(s));
            }

            return digests.Count == 1;
        }, "four generators finished, four identical tables", TimeSpan.FromSeconds(60));
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: generators finished, tables identical");

        // Before: every member's view of every connection.
        var before = new Dictionary<int, Dictionary<string, Owned>>();
        foreach (int m in s_all)
        {
            before[m] = await ConnectionsAsync(cluster, m);
        }

        var owners = before[1];
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: four ownership reports read");
        Assert.True(owners.Count > 10_000, $"only {owners.Count} connections");
        foreach (int m in s_all)
        {
            // Identical tables and identical ownership on every member.
            Assert.Equal(owners.Keys.Order(StringComparer.Ordinal), before[m].Keys.Order(StringComparer.Ordinal));
            Assert.All(before[m], c => Assert.Equal(owners[c.Key].Owner, c.Value.Owner));
            int share = before[m].Values.Count(c => c.Owner == m);
            Assert.True(share > owners.Count / 8, $"member {m} owns only {share} of {owners.Count}");
        }

        // Both directions of every connection have one owner, and each connection was originated by its owner only
        // (the generators route by ownership, as the upstream switch would deliver).
        Assert.All(owners.Values, c => Assert.True(c.Owner == c.ReplyOwner, $"{c.Key} owned by {c.Owner}, its reply {c.Reply} by {c.ReplyOwner}"));
        Assert.All(owners.Values, c => Assert.True(c.Origin == c.Owner, $"{c.Key} owned by {c.Owner} but originated by {c.Origin}"));
        Assert.All(owners.Values, c => Assert.Contains(c.Owner, s_all));

        // Member 4 dies (SIGKILL). The survivors see it Down, the owner set becomes {1,2,3}, and each commits the
        // connections of member 4 it now owns.
        var survivors = new[] { 1, 2, 3 };
        var liveBefore = new Dictionary<int, int>();
        foreach (int m in survivors)
        {
            liveBefore[m] = (await cluster.GetJsonAsync(m, "/ownership"))!.Value.GetProperty("generatorLive").GetInt32();
        }

        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: checked; killing member 4");
        cluster[4]!.Kill();
        await cluster[4]!.WaitForExitAsync(TimeSpan.FromSeconds(10));
        await cluster.WaitUntilAsync(async () =>
        {
            foreach (int m in survivors)
            {
                if (await cluster.GetJsonAsync(m, "/ownership") is not { } o || o.GetProperty("owners").GetArrayLength() != 3)
                {
                    return false;
                }
            }

            return true;
        }, "survivors with owners {1,2,3}");
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: member 4 killed, survivors re-owned");

        foreach (int m in s_all)
        {
            foreach (var line in cluster[m]!.Output.Split('\n').Where(l => l.Contains("owners", StringComparison.Ordinal)))
            {
                log.WriteLine($"member {m}: {line.Trim()}");
            }
        }

        var after = new Dictionary<int, Dictionary<string, Owned>>();
        foreach (int m in survivors)
        {
            after[m] = await ConnectionsAsync(cluster, m);
            Assert.Equal(owners.Keys.Order(StringComparer.Ordinal), after[m].Keys.Order(StringComparer.Ordinal));
        }

        int moved = 0;
        foreach (var (key, was) in owners)
        {
            int now = after[1][key].Owner;
            foreach (int m in survivors)
            {
                Assert.Equal(now, after[m][key].Owner); // the survivors agree
                Assert.Equal(after[m][key].Owner, after[m][key].ReplyOwner);
            }

            if (was.Owner == 4 ? now == 4 : now != was.Owner)
            {
                Assert.Fail($"{key}: owner {was.Owner} -> {now}; only member 4's connections may move, and all of them must");
            }

            // Every connection the dead member owned is in its new owner's committed table, and no other is.
            foreach (int m in survivors)
            {
                Assert.Equal(was.Owner == 4 && now == m, after[m][key].Committed);
            }

            moved += was.Owner == 4 ? 1 : 0;
        }

        Assert.Equal(owners.Values.Count(c => c.Owner == 4), moved);
        foreach (int m in survivors)
        {
            var o = (await cluster.GetJsonAsync(m, "/ownership"))!.Value;
            int gained = after[m].Values.Count(c => c.Committed);
            Assert.True(gained > 0, $"member {m} took over nothing");
            Assert.Equal(gained, o.GetProperty("lastGained").GetInt32());
            // The member's data plane (the generator) now drives its own connections and the ones it took over.
            Assert.Equal(liveBefore[m] + gained, o.GetProperty("generatorLive").GetInt32());
            log.WriteLine($"member {m}: took over {gained} of member 4's {moved} connections");
        }

        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s in all; {owners.Count} connections, {moved} moved");
    }

    private sealed record Owned(string Key, string Reply, int Owner, int ReplyOwner, int Origin, bool Committed);

    private static async Task<Dictionary<string, Owned>> ConnectionsAsync(NodeCluster cluster, int member)
    {
        var report = await cluster.GetJsonAsync(member, "/ownership?connections=true");
        Assert.True(report is not null, $"member {member} gave no ownership report");
        var list = report!.Value.GetProperty("list");
        var result = new Dictionary<string, Owned>(list.GetArrayLength());
        foreach (var c in list.EnumerateArray())
        {
            var o = new Owned(c.GetProperty("key").GetString()!, c.GetProperty("reply").GetString()!, c.GetProperty("owner").GetInt32(),
                c.GetProperty("replyOwner").GetInt32(), c.GetProperty("origin").GetInt32(), c.GetProperty("committed").GetBoolean());
            result.Add(o.Key, o);
        }

        return result;
    }
}
