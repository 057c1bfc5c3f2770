namespace ClusterSync.IntegrationTests.DeltaSync;

/// <summary>
/// Issue 14 acceptance, hostile traffic: random, truncated, bit-flipped and replayed datagrams at a live member of a
/// 3-member cluster (real UDP on loopback, encrypted) while the Active churns. No crash, every datagram the member
/// received is accepted or dropped by a reason, and the tables end identical. 50,000 datagrams by default;
/// <c>CLUSTERSYNC_HOSTILE_DATAGRAMS=1000000</c> runs the full acceptance count.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class HostileTrafficTests(ITestOutputHelper output)
{
    /// <summary>Passes datagrams through, keeps the last few thousand sent (material for replays and mutations) and counts sends per peer.</summary>
    private sealed class Tap(IDatagramChannel inner, int peers) : IDatagramChannel, IReceiveDropCounts
    {
        // The socket's own drops (empty and cut datagrams) stay visible to the engine through the tap.
        public long EmptyDatagrams => (inner as IReceiveDropCounts)?.EmptyDatagrams ?? 0;

        public long OversizeDatagrams => (inner as IReceiveDropCounts)?.OversizeDatagrams ?? 0;

        private readonly byte[][] _recent = new byte[4096][];
        private readonly long[] _sent = new long[peers];
        private long _recorded;

        public int MaxDatagramSize => inner.MaxDatagramSize;

        public int PeerCount => inner.PeerCount;

        public long SentTo(int peerIndex) => Interlocked.Read(ref _sent[peerIndex]);

        public byte[]? Recent(Random random)
        {
            long n = Interlocked.Read(ref _recorded);
            return n == 0 ? null : Volatile.Read(ref _recent[random.NextInt64(Math.Min(n, _recent.Length))]);
        }

        public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _sent[peerIndex]);
            long n = Interlocked.Increment(ref _recorded);
            Volatile.Write(ref _recent[(n - 1) % _recent.Length], datagram.ToArray());
            return inner.SendAsync(datagram, peerIndex, cancellationToken);
        }

        public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => inner.ReceiveAsync(buffer, cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task LiveMember_HostileDatagramsUnderChurn_NoCrashEveryDatagramCountedTablesIdentical()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("CLUSTERSYNC_HOSTILE_DATAGRAMS"), CultureInfo.InvariantCulture, out int n) ? n : 50_000;
        var taps = new Tap[3];
        using var cluster = new LoopbackCluster(3, wrap: (i, channel) => taps[i] = new Tap(channel, 2));
        var active = cluster.Members[0];
        var target = cluster.Members[1];
        var targetEndPoint = cluster.Sockets[1].LocalEndPoint;
        long kernelDropsBefore = UdpReceiveBufferErrors();

        // Churn on the Active for the whole attack.
        using var stop = new CancellationTokenSource();
        long churned = 0;
        var churn = Task.Factory.StartNew(() =>
        {
            var generator = new Workload.ChangeGenerator(14, 20_000);
            var batch = new ConnectionEvent[64];
            while (!stop.IsCancellationRequested)
            {
                long now = active.NowMs();
                for (int i = 0; i < batch.Length; i++)
                {
                    generator.Next(ref batch[i], now);
                }

                active.Submit(batch);
                churned += batch.Length;
                stop.Token.WaitHandle.WaitOne(2); // ~30,000 changes/s
            }
        }, TaskCreationOptions.LongRunning);

        // Wait for material to mutate and replay.
        Assert.True(LoopbackCluster.WaitUntil(() => taps[0].SentTo(0) > 200, TimeSpan.FromSeconds(30)), "the Active sent nothing");

        var random = new Random(1414);
        using var attacker = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        attacker.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var kinds = new long[4];
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            byte[] datagram;
            int kind = i % 4;
            var material = taps[random.Next(2) == 0 ? 0 : 2].Recent(random) ?? taps[0].Recent(random)!;
            switch (kind)
            {
                case 0: // random bytes, any length (empty included)
                    datagram = new byte[random.Next(0, 1500)];
                    random.NextBytes(datagram);
                    break;
                case 1: // truncated
                    datagram = material[..random.Next(0, material.Length)];
                    break;
                case 2: // bit-flipped
                    datagram = (byte[])material.Clone();
                    for (int f = random.Next(1, 4); f > 0; f--)
                    {
                        datagram[random.Next(datagram.Length)] ^= (byte)(1 << random.Next(8));
                    }

                    break;
                default: // replayed as it was
                    datagram = material;
                    break;
            }

            attacker.SendTo(datagram, targetEndPoint);
            kinds[kind]++;
            if (i % 512 == 511)
            {
                // Keep the target's socket buffer from overflowing: wait (bounded) for its receiver to catch up.
                long expected = i + 1 + taps[0].SentTo(0) + taps[2].SentTo(1);
                LoopbackCluster.WaitUntil(() => expected - target.Counters.DatagramsReceived < 4096, TimeSpan.FromMilliseconds(500));
            }
        }

        var attackTime = watch.Elapsed;
        stop.Cancel();
        await churn.WaitAsync(TimeSpan.FromSeconds(10));

        // Tables identical after the attack (and the churn) stop.
        bool converged = LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(active, target) == 0 && LoopbackCluster.Differences(active, cluster.Members[2]) == 0,
            TimeSpan.FromSeconds(60));
        var c = target.Counters;
        long legit = 0;
        LoopbackCluster.WaitUntil(() =>
        {
            legit = taps[0].SentTo(0) + taps[2].SentTo(1);
            return Volatile.Read(ref c.DatagramsReceived) >= count + legit;
        }, TimeSpan.FromSeconds(5));
        legit = taps[0].SentTo(0) + taps[2].SentTo(1);
        LoopbackCluster.WaitUntil(() => Volatile.Read(ref c.DatagramsReceived) == Volatile.Read(ref c.DatagramsAccepted) + c.TotalDrops, TimeSpan.FromSeconds(10));
        long received = Volatile.Read(ref c.DatagramsReceived);
        long accepted = Volatile.Read(ref c.DatagramsAccepted);
        long kernelDrops = UdpReceiveBufferErrors() - kernelDropsBefore;
        var drops = c.ToDictionary().Where(d => d.Key.StartsWith("drops_", StringComparison.Ordinal) && d.Value > 0).ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"hostile {count:N0} (random {kinds[0]:N0}, truncated {kinds[1]:N0}, bit-flipped {kinds[2]:N0}, replayed {kinds[3]:N0}) in {attackTime.TotalSeconds:0.0} s; " +
            $"legitimate to the target {legit:N0}; churn {churned:N0} changes; target received {received:N0} = accepted {accepted:N0} + dropped {c.TotalDrops:N0} " +
            $"({string.Join(", ", drops.Select(d => $"{d.Key[6..]} {d.Value:N0}"))}); kernel receive-buffer drops (machine-wide) {kernelDrops:N0}; table {active.TableCount:N0}"));

        Assert.All(cluster.Members, m => Assert.True(m.IsRunning, $"member {m.MemberId} stopped: {m.Failure}"));
        Assert.True(converged, $"tables differ by {LoopbackCluster.Differences(active, target)} and {LoopbackCluster.Differences(active, cluster.Members[2])}");
        Assert.Equal(received, accepted + c.TotalDrops);
        Assert.True(received + kernelDrops + 10 >= count + legit, $"received {received:N0} + kernel drops {kernelDrops:N0} < sent {count + legit:N0} (10 allowed in flight)");
        Assert.True(c.TotalDrops >= count * 3 / 4, $"only {c.TotalDrops:N0} of {count:N0} hostile datagrams dropped (a quarter are exact replays, also dropped)");
        Assert.True(c.DropsFor(Protocol.DropReason.Replay) > 0 && c.DropsFor(Protocol.DropReason.Truncated) > 0, "replays and truncations are counted as such");
        Assert.True(active.TableCount > 1000);
    }

    /// <summary>Udp RcvbufErrors from /proc/net/snmp (machine-wide: datagrams the kernel dropped for a full socket buffer).</summary>
    private static long UdpReceiveBufferErrors()
    {
        var lines = File.ReadAllLines("/proc/net/snmp").Where(l => l.StartsWith("Udp: ", StringComparison.Ordinal)).ToList();
        var names = lines[0].Split(' ');
        var values = lines[1].Split(' ');
        return long.Parse(values[Array.IndexOf(names, "RcvbufErrors")], CultureInfo.InvariantCulture);
    }
}
