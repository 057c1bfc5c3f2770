namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// The receiver applies the records of Data datagrams its transport already holds together (one hold of the table
/// lock), and never leaves a record staged while it waits for a datagram that has not arrived; any other message sees
/// the records received before it applied.
/// </summary>
public sealed class SyncEngineStagedApplyTests
{
    /// <summary>A transport that holds a queue of datagrams and says so (as the UDP transport does for a recvmmsg batch).</summary>
    private sealed class BatchChannel : IDatagramChannel, IBufferedReceive
    {
        private readonly BlockingCollection<byte[]> _queue = [];
        private long _bufferedAnswers;

        public int MaxDatagramSize => 1500;

        public int PeerCount => 1;

        /// <summary>How often the engine was told another datagram was already held.</summary>
        public long BufferedAnswers => Interlocked.Read(ref _bufferedAnswers);

        public bool HasBufferedDatagram
        {
            get
            {
                bool held = _queue.Count > 0;
                if (held)
                {
                    Interlocked.Increment(ref _bufferedAnswers);
                }

                return held;
            }
        }

        /// <summary>Queues every datagram before the receiver may take the first.</summary>
        public void DeliverAll(IEnumerable<byte[]> datagrams)
        {
            foreach (var d in datagrams)
            {
                _queue.Add((byte[])d.Clone());
            }
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

    private static ConnectionEvent[] Connections(int count, int from = 0)
        => Enumerable.Range(from, count).Select(i => EngineKit.New(EngineKit.Tcp(443, (ushort)(1000 + i)))).ToArray();

    /// <summary>The sender's data datagrams carrying at least <paramref name="records"/> records.</summary>
    private static List<byte[]> CaptureData(SyncEngine sender, CaptureChannel channel, ClusterKey key, int records)
    {
        Assert.True(channel.WaitUntil(c => EngineKit.DecodeAll(c.DataTo(0), key, sender).Count >= records, TimeSpan.FromSeconds(10)),
            $"fewer than {records} records sent");
        return channel.DataTo(0);
    }

    [Fact]
    public void ReceiverLoop_DatagramsAlreadyHeldByTheTransport_EveryRecordAppliedBeforeTheReceiverWaits()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (sender, senderChannel) = EngineKit.Create(1, 2, key, time);
        using var _s = sender;
        var channel = new BatchChannel();
        using var receiver = new SyncEngine(EngineKit.Options(2, 1), channel, key, time);
        sender.Start();
        var changes = Connections(300); // about a dozen datagrams: more records than one staged group of a datagram
        sender.Submit(changes);
        var datagrams = CaptureData(sender, senderChannel, key, changes.Length);
        Assert.True(datagrams.Count >= 3, $"{datagrams.Count} datagrams");

        channel.DeliverAll(datagrams);
        receiver.Start();

        // Nothing else arrives: if the receiver kept the last datagrams' records staged while it waits, this times out.
        Assert.True(SpinWait.SpinUntil(() => receiver.TableCount == changes.Length, TimeSpan.FromSeconds(10)),
            $"{receiver.TableCount} of {changes.Length} applied while the receiver waits");
        Assert.True(channel.BufferedAnswers > 0, "the transport never held a datagram: the staged path was not exercised");
        Assert.Equal(changes.Length, receiver.Counters.UpdatesApplied);
        foreach (var c in changes)
        {
            Assert.True(receiver.TryGetEntry(c.Key, out var e) && e.Owner == 1);
        }
    }

    [Fact]
    public void ReceiverLoop_DestroyAfterUpdateInTheSameBatch_AppliedInOrderTombstoneWins()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (sender, senderChannel) = EngineKit.Create(1, 2, key, time);
        using var _s = sender;
        var channel = new BatchChannel();
        using var receiver = new SyncEngine(EngineKit.Options(2, 1), channel, key, time);
        sender.Start();
        var changes = Connections(100);
        sender.Submit(changes);
        var first = CaptureData(sender, senderChannel, key, changes.Length);

        // Every connection destroyed: the destroys travel in later datagrams of the same batch as the creations.
        sender.Submit(changes.Select(c => EngineKit.Destroy(c.Key)).ToArray());
        var all = CaptureData(sender, senderChannel, key, 2 * changes.Length);
        Assert.True(all.Count > first.Count);

        channel.DeliverAll(all);
        receiver.Start();

        Assert.True(SpinWait.SpinUntil(() => receiver.Counters.UpdatesApplied == 2 * changes.Length, TimeSpan.FromSeconds(10)),
            $"{receiver.Counters.UpdatesApplied} of {2 * changes.Length} applied");
        Assert.Equal(0, receiver.Counters.UpdatesStale);
        Assert.Empty(receiver.SnapshotTable());
        Assert.Equal(changes.Length, receiver.SnapshotTable(includeTombstones: true).Count);
    }

    [Fact]
    public void ReceiverLoop_TableLockHeld_HeartbeatHandledAtOnceAndDataAppliedInOrderAfterTheHold()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        var key = ClusterKey.Generate();
        var (sender, senderChannel) = EngineKit.Create(1, 2, key, time);
        using var _s = sender;
        var channel = new BatchChannel();
        using var receiver = new SyncEngine(EngineKit.Options(2, 1), channel, key, time);
        sender.Start();
        var changes = Connections(100);
        sender.Submit(changes);
        CaptureData(sender, senderChannel, key, changes.Length);
        sender.Submit(changes.Select(c => EngineKit.Destroy(c.Key)).ToArray()); // each destroy after its creation
        var data = CaptureData(sender, senderChannel, key, 2 * changes.Length);
        time.Advance(sender.Options.HeartbeatInterval); // the control tick sends a heartbeat
        Assert.True(senderChannel.WaitUntil(c => c.Sent(MessageType.Heartbeat).Count > 0, TimeSpan.FromSeconds(10)), "a heartbeat was sent");
        var heartbeat = senderChannel.Sent(MessageType.Heartbeat)[^1];

        // A long holder of the receiver's table lock (a snapshot step, a status walk, a commit) while the data and then
        // a heartbeat arrive: the heartbeat is taken in while the lock is held, the data waits for it.
        using var release = new ManualResetEventSlim();
        using var held = new ManualResetEventSlim();
        long heartbeatsWhileHeld = -1;
        long appliedWhileHeld = -1;
        var holder = new Thread(() =>
        {
            lock (receiver.TableLockForTests)
            {
                held.Set();
                // Until the heartbeat is in and every record waits for the lock on the apply thread (at most 10 s).
                SpinWait.SpinUntil(() => receiver.Counters.HeartbeatsReceived > 0 && receiver.ApplyBacklogCount == 2 * changes.Length, TimeSpan.FromSeconds(10));
                heartbeatsWhileHeld = receiver.Counters.HeartbeatsReceived;
                appliedWhileHeld = receiver.Counters.UpdatesApplied;
            }
        }) { IsBackground = true };
        holder.Start();
        Assert.True(held.Wait(TimeSpan.FromSeconds(10)));
        channel.DeliverAll([.. data, heartbeat]);
        receiver.Start();
        Assert.True(holder.Join(TimeSpan.FromSeconds(30)));

        Assert.Equal(1, heartbeatsWhileHeld); // on a receiver that waits for the lock: 0, it is stuck applying the data
        Assert.Equal(0, appliedWhileHeld);
        Assert.True(receiver.Counters.ApplyHandoffs >= 1, "the records went to the apply thread");
        Assert.True(SpinWait.SpinUntil(() => receiver.Counters.UpdatesApplied == 2 * changes.Length, TimeSpan.FromSeconds(10)),
            $"{receiver.Counters.UpdatesApplied} of {2 * changes.Length} applied after the hold");
        Assert.Equal(0, receiver.Counters.UpdatesStale); // in order: no destroy overtook its creation
        Assert.Empty(receiver.SnapshotTable());
        Assert.Equal(changes.Length, receiver.SnapshotTable(includeTombstones: true).Count);
        Assert.Equal(0, receiver.ApplyBacklogCount);
    }
}
