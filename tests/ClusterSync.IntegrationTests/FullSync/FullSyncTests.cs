namespace ClusterSync.IntegrationTests.FullSync;

/// <summary>Full sync over real TCP on loopback, with UDP delta sync running between the same members.</summary>
public sealed class FullSyncTests
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(15);

    private sealed class Tcp : IDisposable
    {
        public Tcp(SyncEngine source, ClusterKey serverKey)
        {
            SourceChannel = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), []);
            JoinerChannel = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), [SourceChannel.LocalEndPoint]);
            Server = new FullSyncServer(source, SourceChannel, serverKey);
            Server.Start();
        }

        public TcpStreamChannel SourceChannel { get; }

        public TcpStreamChannel JoinerChannel { get; }

        public FullSyncServer Server { get; }

        public void Dispose()
        {
            Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            JoinerChannel.Dispose();
        }
    }

    [Fact]
    public async Task Joiner_PullsSnapshotOfChangingSource_EndsIdentical()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { TableCapacity = 1 << 19 });
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        JoinUnderChurn.FillWhileJoinerAway(cluster, 200_000, s_settle);

        using var tcp = new Tcp(source, cluster.Key);
        var client = new FullSyncClient(joiner, tcp.JoinerChannel, cluster.Key);
        var result = await JoinUnderChurn.PullWhileChurning(client, source, rounds: 20, seedBase: 100);

        JoinUnderChurn.AssertJoined(result, 200_000, source, joiner, tcp.Server, s_settle);
        Assert.True(source.TableCount >= 200_000);
        Assert.Equal(1, client.Counters.Received);
        // The joiner acknowledged the cover at once (from Begin): the source knows everything up to the cut arrived.
        Assert.True(LoopbackCluster.WaitUntil(() => source.GetPeerStatus().Single(p => p.MemberId == joiner.MemberId).AckedThrough >= result.CutSequence,
            TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task MemberThatRaisedResyncNeeded_RepairsWithFullSync()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { ResendBufferDatagrams = 64, SendWindowDatagrams = 32, AckEveryDatagrams = 8, TableCapacity = 1 << 17 });
        var source = cluster.Members[0];
        var replica = cluster.Members[1];
        LoopbackCluster.Drive(source, 20_000, seed: 7, population: 5_000);
        LoopbackCluster.AssertIdentical(source, replica, s_settle);

        var resync = new TaskCompletionSource<byte>(TaskCreationOptions.RunContinuationsAsynchronously);
        replica.ResyncNeeded += (peer, _) => resync.TrySetResult(peer);
        // A partition (both ways: the source stops waiting for the replica) far longer than the 64-datagram resend buffer covers.
        cluster.Partition(true);
        LoopbackCluster.Drive(source, 60_000, seed: 8, population: 20_000, addressBase: 0x0D00_0000);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.DatagramsSent > 200, s_settle));
        cluster.Partition(false);
        var peer = await resync.Task.WaitAsync(s_settle);
        Assert.Equal(source.MemberId, peer);
        Assert.True(LoopbackCluster.Differences(source, replica) > 0);

        using var tcp = new Tcp(source, cluster.Key);
        var client = new FullSyncClient(replica, tcp.JoinerChannel, cluster.Key);
        var result = await client.PullAsync(0);
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.True(result.Applied > 0);
        LoopbackCluster.AssertIdentical(source, replica, s_settle);
    }

    [Fact]
    public async Task FullSync_AfterAGapDeltaSyncCannotRepair_BringsTheLiveTemplates()
    {
        // Sync everything, with connection templates (docs/templates.md): 20 connections of one shape make one.
        var policy = LoopbackCluster.SyncEverything with
        {
            Classes = [new ServiceClassOptions { Name = "default", Policy = "full", Templates = new TemplateOptions { Threshold = 20 } }],
        };
        using var cluster = new LoopbackCluster(2, configure: o => o with { ResendBufferDatagrams = 64, SendWindowDatagrams = 32, AckEveryDatagrams = 8, TableCapacity = 1 << 17, Policy = policy });
        var source = cluster.Members[0];
        var replica = cluster.Members[1];
        var resync = new TaskCompletionSource<byte>(TaskCreationOptions.RunContinuationsAsynchronously);
        replica.ResyncNeeded += (peer, _) => resync.TrySetResult(peer);

        cluster.Partition(true);
        var burst = Enumerable.Range(0, 100).Select(i => ConnectionKey.IPv4(0x0C00_0001, 0xC0A8_0101, (ushort)(20000 + i), 80, 6)).ToList();
        foreach (var k in burst)
        {
            source.Submit(ConnectionEvent.Create(ConnectionEventKind.New, k, ProtocolState.TcpSynSent, 60, 0));
            source.Submit(ConnectionEvent.Create(ConnectionEventKind.Destroy, k, ProtocolState.TcpClose, 0, 0));
        }

        Assert.True(source.TryMatchTemplate(burst[0], out _));
        // Far more than the 64-datagram resend buffer: the template's datagram can no longer be resent.
        LoopbackCluster.Drive(source, 60_000, seed: 8, population: 20_000, addressBase: 0x0D00_0000);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.DatagramsSent > 200, s_settle));
        cluster.Partition(false);
        Assert.Equal(source.MemberId, await resync.Task.WaitAsync(s_settle));
        Assert.False(replica.TryMatchTemplate(burst[0], out _));

        using var tcp = new Tcp(source, cluster.Key);
        var client = new FullSyncClient(replica, tcp.JoinerChannel, cluster.Key);
        var result = await client.PullAsync(0);

        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.True(LoopbackCluster.WaitUntil(() => replica.TryMatchTemplate(burst[0], out _), s_settle), "the template arrived after the cut");
        Assert.True(LoopbackCluster.WaitUntil(() => replica.LiveTemplateCount == source.LiveTemplateCount, s_settle),
            $"replica {replica.LiveTemplateCount} templates, source {source.LiveTemplateCount}");
    }

    [Fact]
    public async Task WrongKeyJoiner_GetsNothing_AndBothSidesCountIt()
    {
        var key = ClusterKey.Generate();
        var wrong = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(2, keys: i => i == 0 ? key : wrong);
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        LoopbackCluster.Fill(source, 10_000);

        using var tcp = new Tcp(source, key);
        var client = new FullSyncClient(joiner, tcp.JoinerChannel, wrong);
        var result = await client.PullAsync(0);
        Assert.Equal(FullSyncStatus.WrongKey, result.Status);
        Assert.Equal(0, result.Entries);
        Assert.Equal(1, client.Counters.HandshakeWrongKey);
        Assert.True(LoopbackCluster.WaitUntil(() => tcp.Server.Counters.HandshakeWrongKey == 1, s_settle));
        Assert.Equal(0, tcp.Server.Counters.EntriesSent);
        Assert.Equal(0, joiner.TableCount);
    }
}
