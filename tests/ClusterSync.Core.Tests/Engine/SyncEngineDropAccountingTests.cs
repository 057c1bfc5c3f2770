namespace ClusterSync.Core.Tests.Engine;

/// <summary>Every datagram received is accounted for: received = accepted + dropped by reason (issue 14, error paths).</summary>
public sealed class SyncEngineDropAccountingTests
{
    /// <summary>Hands queued datagrams to the engine's receiver; counts empty and oversize ones as a UDP socket would.</summary>
    private sealed class ScriptedChannel : IDatagramChannel, IReceiveDropCounts
    {
        private readonly BlockingCollection<byte[]> _queue = [];
        private long _empty;
        private long _oversize;

        public int MaxDatagramSize => 1500;

        public int PeerCount => 1;

        public long EmptyDatagrams => Interlocked.Read(ref _empty);

        public long OversizeDatagrams => Interlocked.Read(ref _oversize);

        public void Deliver(byte[] datagram) => _queue.Add(datagram);

        /// <summary>The socket swallowed an empty datagram and one cut by the kernel, then a real one arrives.</summary>
        public void SwallowEmptyAndOversize(byte[] next)
        {
            Interlocked.Increment(ref _empty);
            Interlocked.Increment(ref _oversize);
            _queue.Add(next);
        }

        public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var d = _queue.Take(cancellationToken);
            d.CopyTo(buffer);
            return ValueTask.FromResult(new DatagramReceiveResult(d.Length, 0));
        }

        public void Dispose() => _queue.CompleteAdding();
    }

    [Fact]
    public void ReceiverLoop_HostileMix_EveryDatagramCountedAsAcceptedOrDroppedByReason()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (sender, senderChannel) = EngineKit.Create(1, 2, key, time);
        using var _s = sender;
        var channel = new ScriptedChannel();
        using var receiver = new SyncEngine(new SyncEngineOptions { MemberId = 2, PeerMemberIds = [1], TableCapacity = 1024, Policy = EngineKit.TestPolicy() },
            channel, key, time);
        sender.Start();
        sender.Submit(EngineKit.New(EngineKit.Tcp(443, 100)));
        var good = senderChannel.WaitForData(1)[0];
        receiver.Start();

        var flipped = (byte[])good.Clone();
        flipped[^1] ^= 1;
        var badMagic = (byte[])good.Clone();
        badMagic[0] = 0;
        var badVersion = (byte[])good.Clone();
        badVersion[2] = 9;
        var random = new byte[300];
        new Random(14).NextBytes(random);
        channel.Deliver([]);                          // empty (a transport that hands it over)
        channel.Deliver(new byte[1501]);              // longer than the channel carries
        channel.Deliver(good[..10]);                  // truncated header
        channel.Deliver(badMagic);
        channel.Deliver(badVersion);
        channel.Deliver(flipped);                     // authentication
        channel.Deliver(random);
        channel.Deliver(good);                        // accepted
        channel.Deliver(good);                        // replay
        channel.SwallowEmptyAndOversize(good);        // the socket's own drops, then a replay

        var c = receiver.Counters;
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref c.DatagramsReceived) == 12, TimeSpan.FromSeconds(10)),
            $"received {c.DatagramsReceived}");
        Assert.Equal(1, c.DatagramsAccepted);
        Assert.Equal(2, c.DropsFor(DropReason.Empty));
        Assert.Equal(2, c.DropsFor(DropReason.Oversize));
        Assert.Equal(1, c.DropsFor(DropReason.Truncated));
        Assert.Equal(2, c.DropsFor(DropReason.BadMagic)); // the crafted one and (most likely) the random bytes
        Assert.Equal(1, c.DropsFor(DropReason.BadVersion));
        Assert.Equal(1, c.DropsFor(DropReason.AuthenticationFailed));
        Assert.Equal(2, c.DropsFor(DropReason.Replay));
        Assert.Equal(c.DatagramsReceived, c.DatagramsAccepted + c.TotalDrops);
        var names = c.ToDictionary();
        Assert.Equal(2, names["drops_empty"]);
        Assert.Equal(2, names["drops_oversize"]);
        Assert.Equal(1, names["datagrams_accepted"]);
    }
}
