namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// The UDP transport's batched path (sendmmsg, UDP GSO, recvmmsg with UDP GRO) on loopback: every datagram arrives
/// whole, once, in the order sent, also when the kernel refuses GSO or the receiver does not ask for GRO; and the
/// engine over it replicates exactly as over the one-by-one path, under loss too.
/// </summary>
public sealed class BatchedTransportTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    /// <summary>Datagram <paramref name="index"/> of a test: <paramref name="length"/> bytes, its index in the first 4, a pattern after.</summary>
    private static byte[] Datagram(int index, int length)
    {
        var d = new byte[length];
        for (int i = 0; i < length; i++)
        {
            d[i] = (byte)((index * 31) + i);
        }

        if (length >= 4)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(d, index);
        }

        return d;
    }

    private static (UdpDatagramChannel A, UdpDatagramChannel B) Pair()
    {
        var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        var b = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        a.SetPeers([b.LocalEndPoint]);
        b.SetPeers([a.LocalEndPoint]);
        return (a, b);
    }

    /// <summary>Receives <paramref name="expected"/>.Count datagrams on <paramref name="b"/> and checks each against what was sent, in order.</summary>
    private static async Task AssertReceivedInOrder(UdpDatagramChannel b, IReadOnlyList<byte[]> expected)
    {
        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(s_timeout);
        for (int i = 0; i < expected.Count; i++)
        {
            var result = await b.ReceiveAsync(buffer, timeout.Token);
            Assert.Equal(0, result.PeerIndex);
            Assert.True(expected[i].AsSpan().SequenceEqual(buffer.AsSpan(0, result.Length)),
                $"datagram {i}: expected {expected[i].Length} bytes starting {expected[i][0]:x2}, got {result.Length} bytes (index field {(result.Length >= 4 ? System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer) : -1)})");
        }
    }

    [Fact]
    public async Task SendBatch_EqualLengthRunAndShorterLast_ArrivesAsTheSameDatagramsInOrder()
    {
        var (a, b) = Pair();
        using var _a = a;
        using var _b = b;
        // 100 datagrams of 1400 bytes (three GSO runs: 46 + 46 + 8) and a shorter last one.
        var sent = Enumerable.Range(0, 100).Select(i => Datagram(i, 1400)).Append(Datagram(100, 333)).ToList();
        a.SendBatch(sent.Select(d => (ReadOnlyMemory<byte>)d).ToArray(), 0);

        await AssertReceivedInOrder(b, sent);
        Assert.Equal("sendmmsg+gso/recvmmsg+gro", a.TransportPath);
        Assert.True(a.GsoMessages > 0, "equal-length datagrams must travel as GSO runs");
        Assert.True(a.SendCalls < sent.Count, $"{a.SendCalls} send calls for {sent.Count} datagrams");
        Assert.True(b.GroDatagrams >= 46, $"the receiver must have cut coalesced buffers ({b.GroDatagrams} datagrams)");
    }

    [Fact]
    public async Task SendBatch_MixedLengths_EveryDatagramArrivesWholeOnceInOrder()
    {
        var (a, b) = Pair();
        using var _a = a;
        using var _b = b;
        var random = new Random(7);
        var sent = new List<byte[]>();
        for (int i = 0; i < 600;)
        {
            // Runs of equal lengths, single odd lengths, a longer one after a shorter one (ends a run), 1-byte datagrams.
            int length = random.Next(4) switch { 0 => 1400, 1 => random.Next(1, 1401), 2 => 1 + random.Next(8), _ => 700 };
            int run = random.Next(1, 12);
            for (int j = 0; j < run && i < 600; j++, i++)
            {
                sent.Add(Datagram(i, length));
            }
        }

        var memories = sent.Select(d => (ReadOnlyMemory<byte>)d).ToArray();
        for (int i = 0; i < memories.Length; i += 150)
        {
            a.SendBatch(memories.AsSpan(i, Math.Min(150, memories.Length - i)), 0);
        }

        await AssertReceivedInOrder(b, sent);
        Assert.Equal(0, a.SendErrors);
    }

    [Fact]
    public async Task SendBatch_KernelRefusesGso_FallsBackToPlainDatagramsAndDeliversAll()
    {
        var (a, b) = Pair();
        using var _a = a;
        using var _b = b;
        // With UDP checksums off the kernel refuses every GSO send (EINVAL): a real refusal, not a simulated one.
        a.Socket.SetRawSocketOption(1 /* SOL_SOCKET */, 11 /* SO_NO_CHECK */, BitConverter.GetBytes(1));
        var sent = Enumerable.Range(0, 80).Select(i => Datagram(i, 1200)).ToList();
        a.SendBatch(sent.Select(d => (ReadOnlyMemory<byte>)d).ToArray(), 0);

        await AssertReceivedInOrder(b, sent);
        Assert.Equal(1, a.PathChanges);
        Assert.StartsWith("sendmmsg (gso refused: errno 22)/", a.TransportPath, StringComparison.Ordinal);
        Assert.Equal(0, a.GsoMessages);

        // GSO stays off: the next batch goes out as plain datagrams at once.
        var more = Enumerable.Range(80, 40).Select(i => Datagram(i, 1200)).ToList();
        a.SendBatch(more.Select(d => (ReadOnlyMemory<byte>)d).ToArray(), 0);
        await AssertReceivedInOrder(b, more);
        Assert.Equal(1, a.PathChanges);
    }

    [Fact]
    public void SendBatch_ToReceiverWithoutGro_KernelDeliversEachDatagramSeparately()
    {
        using var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var plain = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 10_000 };
        plain.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        a.SetPeers([(IPEndPoint)plain.LocalEndPoint!]);
        var sent = Enumerable.Range(0, 50).Select(i => Datagram(i, 1000)).Append(Datagram(50, 10)).ToList();
        a.SendBatch(sent.Select(d => (ReadOnlyMemory<byte>)d).ToArray(), 0);

        Assert.True(a.GsoMessages > 0);
        var buffer = new byte[65536];
        foreach (var expected in sent)
        {
            int n = plain.Receive(buffer); // a peer that never enabled UDP GRO (an older member) sees plain datagrams
            Assert.True(expected.AsSpan().SequenceEqual(buffer.AsSpan(0, n)), $"expected {expected.Length} bytes, got {n}");
        }
    }

    [Fact]
    public async Task Receive_CoalescedRunWithLongerDatagramsThanTheChannelCarries_CountedOversizeNotDelivered()
    {
        // The receiver carries at most 600 bytes; a GSO run of 1000-byte datagrams arrives coalesced and must be
        // dropped datagram by datagram as too large (as the kernel's truncation was counted before GRO), then a fitting one passes.
        using var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var b = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 600);
        a.SetPeers([b.LocalEndPoint]);
        b.SetPeers([a.LocalEndPoint]);
        a.SendBatch(Enumerable.Range(0, 10).Select(i => (ReadOnlyMemory<byte>)Datagram(i, 1000)).ToArray(), 0);
        a.SendBatch(new ReadOnlyMemory<byte>[] { Datagram(99, 500) }, 0);

        var buffer = new byte[65536];
        using var timeout = new CancellationTokenSource(s_timeout);
        var result = await b.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal(500, result.Length);
        Assert.Equal(99, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer));
        Assert.Equal(10, b.OversizeDatagrams);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Engine_BatchedOrOneByOne_ReplicatesEveryUpdateWithFewerSendCallsBatched(bool batched)
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { BatchSends = batched, TableCapacity = 1 << 17 });
        var sender = cluster.Members[0];
        LoopbackCluster.Drive(sender, 60_000, seed: 11, population: 30_000);
        LoopbackCluster.AssertIdentical(sender, cluster.Members[1], TimeSpan.FromSeconds(60));
        Assert.Equal(0, cluster.Members[1].Counters.TotalDrops);
        Assert.Equal(0, cluster.Members[1].Counters.ResyncNeeded);
        long datagrams = sender.Counters.DatagramsSent;
        long calls = cluster.Sockets[0].SendCalls;
        if (batched)
        {
            Assert.Equal("sendmmsg+gso/recvmmsg+gro", sender.TransportPath);
            Assert.True(calls < datagrams, $"{calls} send calls for {datagrams} data datagrams");
        }
        else
        {
            Assert.True(calls >= datagrams, $"one by one: {calls} send calls for {datagrams} data datagrams");
        }
    }

    [Fact]
    public void Engine_BatchedUnderLossDuplicationReordering_RepairsAndConverges()
    {
        using var cluster = new LoopbackCluster(2, faults: f =>
        {
            f.DropRate = 0.10;
            f.DuplicateRate = 0.05;
            f.ReorderRate = 0.05;
        });
        var sender = cluster.Members[0];
        LoopbackCluster.Drive(sender, 60_000, seed: 12, population: 20_000);
        LoopbackCluster.AssertIdentical(sender, cluster.Members[1], TimeSpan.FromSeconds(60));
        var receiver = cluster.Members[1].Counters;
        Assert.True(cluster.Faults[0].Dropped > 0 && cluster.Faults[0].Duplicated > 0 && cluster.Faults[0].Reordered > 0);
        Assert.True(sender.Counters.Retransmissions > 0, "losses must have been repaired by retransmission");
        Assert.True(receiver.DropsFor(Protocol.DropReason.Replay) > 0, "duplicates must have been rejected by the replay window");
        Assert.Equal(0, receiver.ResyncNeeded);
        Assert.True(cluster.Sockets[0].SendCalls < sender.Counters.DatagramsSent + sender.Counters.Retransmissions,
            "the faults wrapper must hand surviving datagrams on as batches");
    }
}
