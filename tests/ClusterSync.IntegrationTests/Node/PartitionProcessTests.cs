namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Issue "Cluster lifecycle", acceptance: "partition and heal (drop all traffic between two members for a while):
/// exactly one Active afterwards, tables converge" — two <c>clustersync node</c> OS processes, the partition a real
/// nftables rule set on loopback (<see cref="NftPartition"/>).
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class PartitionProcessTests(ITestOutputHelper log)
{
    [NftFact]
    public async Task TwoCliProcesses_PartitionedLongerThanDeadInterval_BothActive_AfterHealExactlyOneActiveByRank_TablesConverge()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = new NodeCluster(2, log);
        await cluster.KeygenAsync();
        // Both members have a generator; only an Active one drives it. Member 1 (priority 100) outranks member 2 (90).
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 41, Connections = 10_000, ChangesPerSecond = 5000, SourceBase = "10.0.0.0" }));
        cluster.Write(2, NodeCluster.Generator(new GeneratorConfig { Seed = 42, Connections = 10_000, ChangesPerSecond = 5000, SourceBase = "10.1.0.0" }));
        cluster.Start(1);
        await cluster.WaitUntilAsync(async () => NodeCluster.MemberState(await cluster.StatusAsync(1)) == "Active", "member 1 Active");
        cluster.Start(2);
        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(2) is { } s && NodeCluster.MemberState(s) == "Standby"
            && s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "member 2 Standby after its full sync");
        Assert.Equal(0, (await cluster.StatusAsync(2))!.Value.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64());

        long submittedBefore;
        using (var partition = NftPartition.Drop([cluster.Sync[0], cluster.Sync[1]], [cluster.FullSync[0], cluster.FullSync[1]]))
        {
            // Longer than the dead interval (300 ms): each side declares the other dead, member 2 takes over: two Actives,
            // each driving its data plane (member 2 from the population it committed at its takeover).
            var cut = Stopwatch.StartNew();
            await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s1 && await cluster.StatusAsync(2) is { } s2
                && NodeCluster.MemberState(s1) == "Active" && NodeCluster.MemberState(s2) == "Active"
                && PeerState(s1, 2) == "Down" && PeerState(s2, 1) == "Down"
                && s2.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64() >= 5000, "split brain: both Active, member 2 driving");
            var s2Split = (await cluster.StatusAsync(2))!.Value;
            Assert.Equal(1, s2Split.GetProperty("membership").GetProperty("failovers").GetInt64());
            submittedBefore = (await cluster.StatusAsync(1))!.Value.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64();
            log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: split brain after {cut.ElapsedMilliseconds} ms of partition; {partition.DroppedPackets()} packets dropped by {partition.Table}");
            Assert.True(partition.DroppedPackets() > 0);
            partition.Heal();
        }

        // Healed: the lower rank (member 2) steps down, counted and logged; member 1 stays Active throughout.
        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s1 && await cluster.StatusAsync(2) is { } s2
            && NodeCluster.MemberState(s1) == "Active" && NodeCluster.MemberState(s2) == "Standby"
            && PeerState(s1, 2) == "Standby" && PeerState(s2, 1) == "Active", "one Active after the heal");
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: healed, member 1 Active, member 2 Standby");
        var s2After = (await cluster.StatusAsync(2))!.Value;
        Assert.Equal(1, s2After.GetProperty("membership").GetProperty("splitBrainsResolved").GetInt64());
        Assert.Contains("Member 2 saw another Active member of higher rank (split brain): stepping down to Standby", cluster[2]!.Output, StringComparison.Ordinal);
        var s1After = (await cluster.StatusAsync(1))!.Value;
        Assert.Equal(0, s1After.GetProperty("membership").GetProperty("splitBrainsResolved").GetInt64());
        Assert.Equal(1, s1After.GetProperty("membership").GetProperty("failovers").GetInt64()); // its start-up promotion only
        Assert.True(s1After.GetProperty("dataPlane").GetProperty("changesSubmitted").GetInt64() > submittedBefore, "member 1 stopped driving");

        // Exactly one Active, and it stays so: ten looks over a second, each member's own state and its view of the other.
        for (int i = 0; i < 10; i++)
        {
            var a = (await cluster.StatusAsync(1))!.Value;
            var b = (await cluster.StatusAsync(2))!.Value;
            Assert.Equal(("Active", "Standby"), (NodeCluster.MemberState(a), NodeCluster.MemberState(b)));
            Assert.Equal(("Standby", "Active"), (PeerState(a, 2), PeerState(b, 1)));
            await Task.Delay(100);
        }

        // Converge: hold member 1's churn; once each member's changes (member 2's from its time as Active included)
        // are acknowledged by the other, both tables are identical.
        await cluster.PostAsync(1, "/generator/pause");
        (long Count, string Xor) d1 = default;
        await cluster.WaitUntilAsync(async () =>
        {
            if (await cluster.StatusAsync(1) is not { } s1 || await cluster.StatusAsync(2) is not { } s2
                || !s1.GetProperty("dataPlane").GetProperty("paused").GetBoolean() || !NodeCluster.Settled(s1) || !NodeCluster.Settled(s2))
            {
                return false;
            }

            d1 = NodeCluster.Digest(s1);
            return NodeCluster.Digest(s2) == d1;
        }, "both tables identical after the heal");
        log.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: converged, {d1.Count} connections, digest {d1.Xor}");
        Assert.True(d1.Count > 5000);
    }

    private static string? PeerState(JsonElement status, int member)
        => status.GetProperty("peers").EnumerateArray().First(p => p.GetProperty("memberId").GetInt32() == member).GetProperty("memberState").GetString();
}
