using System.Net;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.IntegrationTests.FullSync;

/// <summary>Full sync over real TCP on loopback, with UDP delta sync running between the same members.</summary>
public sealed class FullSyncTests
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(15);

    private static ConnectionKey KeyOf(int index) => ConnectionKey.IPv4(0x0B00_0000u + (uint)(index >> 16), 0xC0A8_0001, (ushort)index, 443, 6);

    private static void Fill(SyncEngine member, int count)
    {
        var batch = new ConnectionEvent[256];
        long now = member.NowMs();
        for (int i = 0; i < count;)
        {
            int n = Math.Min(batch.Length, count - i);
            for (int j = 0; j < n; j++)
            {
                batch[j] = ConnectionEvent.Create(ConnectionEventKind.New, KeyOf(i + j), ProtocolState.TcpEstablished, 3600, now);
            }

            member.Submit(batch.AsSpan(0, n));
            i += n;
        }
    }

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
        var key = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(2, keys: _ => key, configure: o => o with { TableCapacity = 1 << 19 });
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        // The joiner "was not there" while the source filled: the link drops everything.
        // Both directions, so the source sees the joiner dead and its flow control does not wait for it.
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = true;
        Fill(source, 200_000);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.UpdatesSent >= 200_000, s_settle));
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = false;
        Assert.True(joiner.TableCount < 1000);

        using var tcp = new Tcp(source, key);
        var client = new FullSyncClient(joiner, tcp.JoinerChannel, key);
        using var churnStop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var churn = Task.Run(() =>
        {
            // Bounded in count and time: new, updated and destroyed connections while the snapshot streams.
            for (int round = 0; round < 20 && !churnStop.IsCancellationRequested; round++)
            {
                LoopbackCluster.Drive(source, 5_000, seed: 100 + round, population: 4_000, addressBase: 0x0C00_0000u + ((uint)round << 16));
            }
        });
        var result = await client.PullAsync(0);
        await churn;

        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.True(result.Entries >= 200_000, $"{result.Entries} entries");
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(source, joiner) == 0, s_settle),
            $"tables differ by {LoopbackCluster.Differences(source, joiner)}");
        Assert.True(source.TableCount >= 200_000);
        Assert.Equal(1, client.Counters.Received);
        Assert.True(LoopbackCluster.WaitUntil(() => tcp.Server.Counters.Served == 1, s_settle));
        // The delta window now starts at the cut (or later): nothing at or below it is asked for again.
        var (epoch, through) = joiner.ReceivedThrough(source.MemberId);
        Assert.Equal(source.Epoch, epoch);
        Assert.True(through >= result.CutSequence);
        // The joiner acknowledged the cover at once (from Begin): the source knows everything up to the cut arrived.
        Assert.True(LoopbackCluster.WaitUntil(() => source.GetPeerStatus().Single(p => p.MemberId == joiner.MemberId).AckedThrough >= result.CutSequence,
            TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task MemberThatRaisedResyncNeeded_RepairsWithFullSync()
    {
        var key = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(2, keys: _ => key, configure: o => o with { ResendBufferDatagrams = 64, SendWindowDatagrams = 32, AckEveryDatagrams = 8, TableCapacity = 1 << 17 });
        var source = cluster.Members[0];
        var replica = cluster.Members[1];
        LoopbackCluster.Drive(source, 20_000, seed: 7, population: 5_000);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(source, replica) == 0, s_settle));

        var resync = new TaskCompletionSource<byte>(TaskCreationOptions.RunContinuationsAsynchronously);
        replica.ResyncNeeded += (peer, _) => resync.TrySetResult(peer);
        // A partition (both ways: the source stops waiting for the replica) far longer than the 64-datagram resend buffer covers.
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = true;
        LoopbackCluster.Drive(source, 60_000, seed: 8, population: 20_000, addressBase: 0x0D00_0000);
        Assert.True(LoopbackCluster.WaitUntil(() => source.PendingCount == 0 && source.Counters.DatagramsSent > 200, s_settle));
        cluster.Faults[0].Partitioned = cluster.Faults[1].Partitioned = false;
        var peer = await resync.Task.WaitAsync(s_settle);
        Assert.Equal(source.MemberId, peer);
        Assert.True(LoopbackCluster.Differences(source, replica) > 0);

        using var tcp = new Tcp(source, key);
        var client = new FullSyncClient(replica, tcp.JoinerChannel, key);
        var result = await client.PullAsync(0);
        Assert.Equal(FullSyncStatus.Completed, result.Status);
        Assert.True(result.Applied > 0);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(source, replica) == 0, s_settle),
            $"tables differ by {LoopbackCluster.Differences(source, replica)}");
    }

    [Fact]
    public async Task WrongKeyJoiner_GetsNothing_AndBothSidesCountIt()
    {
        var key = ClusterKey.Generate();
        var wrong = ClusterKey.Generate();
        using var cluster = new LoopbackCluster(2, keys: i => i == 0 ? key : wrong);
        var source = cluster.Members[0];
        var joiner = cluster.Members[1];
        Fill(source, 10_000);

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
