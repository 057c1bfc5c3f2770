namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// <c>clustersync node</c> processes with <c>cluster.transport: nats</c>: the node finds the NATS transport plugin in its
/// plugin directory by name, joins by full sync over NATS streams, replicates deltas over NATS subjects, and fails over
/// with every synchronized connection committed.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NatsNodeProcessTests(NatsServerFixture nats, ITestOutputHelper log) : IClassFixture<NatsServerFixture>
{
    [SkippableFact]
    public async Task TwoNodeProcessesOnNats_JoinFailoverAndCommit_NoSynchronizedConnectionLost()
    {
        Skip.If(nats.SkipReason is not null, nats.SkipReason);
        string root = $"clustersync.test{Environment.ProcessId}.{Guid.NewGuid():N}";
        await using var cluster = new NodeCluster(2, log) { Transport = ("nats", m => $"{nats.Url}/{root}.m{m}") };
        await cluster.KeygenAsync();
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 21, Connections = 5000, ChangesPerSecond = 4000, MaxChanges = 12_000 }));
        cluster.Write(2, NodeCluster.NoDataPlane);
        var n1 = cluster.Start(1);
        await cluster.WaitForStateAsync(1, "Active");
        cluster.Start(2);
        await cluster.WaitForStateAsync(2, "Standby");
        var joined = (await cluster.StatusAsync(2))!.Value;
        Assert.True(joined.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "member 2 Standby without a full sync over NATS");

        var last = await cluster.WaitForStatusAsync(1, s => NodeCluster.Finished(s) && NodeCluster.AcknowledgedByAll(s), "member 1 finished and acknowledged over NATS");
        var before = NodeCluster.Digest(last);
        Assert.True(before.Count > 2000, $"member 1 holds only {before.Count} connections");
        var replica = NodeCluster.Digest((await cluster.StatusAsync(2))!.Value);
        Assert.Equal(before, replica);

        var clock = Stopwatch.StartNew();
        n1.Kill();
        JsonElement? active = null;
        await cluster.WaitUntilAsync(async () =>
        {
            active = await cluster.StatusAsync(2);
            return NodeCluster.MemberState(active) == "Active";
        }, "member 2 Active after the kill");
        log.WriteLine($"member 2 Active {clock.ElapsedMilliseconds} ms after SIGKILL of member 1; {before.Count} connections over NATS");
        Assert.Equal(before, NodeCluster.Digest(active!.Value.GetProperty("membership").GetProperty("committed")));
    }
}
