namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Issue 14, bug 2, as processes: connections that send a ClientHello without the key and then wait must neither take
/// the Active's full-sync slots nor make a restarted member skip its full sync ("synchronized (first member)").
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class SlotHoldingProcessTests
{
    private static byte[] ClientHello(byte member) => FullSyncHandshake.NewClientHello(member);

    [Fact]
    public async Task SlotHoldersOnActivesFullSyncPort_RestartedMemberStillJoinsByFullSyncBeforeStandby()
    {
        await using var cluster = new NodeCluster(2);
        await cluster.KeygenAsync();
        cluster.Write(1, NodeCluster.Generator(new GeneratorConfig { Seed = 51, Connections = 20_000, ChangesPerSecond = 20_000, MaxChanges = 20_000 }));
        cluster.Write(2, NodeCluster.NoDataPlane);
        cluster.Start(1);
        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s && NodeCluster.MemberState(s) == "Active"
            && s.GetProperty("dataPlane").GetProperty("finished").GetBoolean(), "member 1 Active with its connections");

        // Attackers without the key, from another host (127.0.0.2: the members use 127.0.0.1): more hellos than the
        // server has transfer slots (4), renewed as soon as they are cut, for the whole join. (Pending handshakes are
        // bounded per source address, so an attacker sharing the joiner's address could still crowd it out.)
        using var stop = new CancellationTokenSource();
        var endpoint = new IPEndPoint(IPAddress.Loopback, cluster.FullSync[0]);
        var attackers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                    await socket.ConnectAsync(endpoint, stop.Token);
                    await socket.SendAsync(ClientHello(2), SocketFlags.None, stop.Token);
                    var buffer = new byte[128];
                    while (await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token) > 0)
                    {
                        // hold the connection until the server cuts it
                    }
                }
                catch (Exception ex) when (ex is SocketException or OperationCanceledException)
                {
                }
            }
        })).ToList();

        try
        {
            cluster.Start(2);
            await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(2) is { } s && NodeCluster.MemberState(s) == "Standby",
                "member 2 Standby", TimeSpan.FromSeconds(60));
            // /status can say Standby before the log line has reached this process's copy of the node's output.
            await cluster.WaitUntilAsync(() => cluster[2]!.Output.Contains("Member 2: Syncing -> Standby", StringComparison.Ordinal),
                "member 2's Standby transition logged", TimeSpan.FromSeconds(10));
            string output = cluster[2]!.Output;
            Assert.DoesNotContain("first member", output, StringComparison.Ordinal);
            int joined = output.IndexOf("Member 2 joined: full sync from member 1 (Active)", StringComparison.Ordinal);
            int standby = output.IndexOf("Member 2: Syncing -> Standby", StringComparison.Ordinal);
            Assert.True(joined >= 0 && standby > joined, $"member 2 reported Standby without a completed join pull:\n{output}");
            var fullSync = (await cluster.StatusAsync(1))!.Value.GetProperty("fullSync");
            Assert.True(fullSync.GetProperty("full_sync_unauthenticated_cut").GetInt64() + fullSync.GetProperty("full_sync_handshakes_over_limit").GetInt64() > 0,
                "the attackers' connections were neither cut nor refused");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(attackers);
        }

        await cluster.WaitUntilAsync(async () => await cluster.StatusAsync(1) is { } s1 && await cluster.StatusAsync(2) is { } s2
            && NodeCluster.Settled(s1) && NodeCluster.Digest(s1) == NodeCluster.Digest(s2), "tables identical");
    }
}
