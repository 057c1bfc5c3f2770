using System.Buffers;
using System.Collections.Concurrent;
using System.Threading.Channels;
using NATS.Client.Core;

namespace ClusterSync.Transport.Nats;

/// <summary>
/// Delta sync and the control channel over NATS core subjects: member B receives what A sends on
/// <c>&lt;B root&gt;.d.&lt;A root&gt;</c>, one subscription per configured peer (so the subscription names the peer).
/// The receive path copies each payload straight from the client's socket buffer into a slot of a fixed pool of
/// <see cref="ReceiveSlots"/> buffers and queues it on a bounded single-reader channel; no message object is built.
/// The engine's receive thread waits on an event the reader sets (no async machinery per datagram).
/// When every slot is taken the datagram is dropped and counted, like a full UDP socket buffer: delta sync's NACKs
/// and retransmissions repair it. Sends while the connection is not open (reconnecting) are dropped and counted too,
/// so the engine's sender and control threads never wait for a server that went away.
/// </summary>
internal sealed class NatsDatagramChannel : IDatagramChannel
{
    /// <summary>Datagrams queued between the NATS reader and the engine's receive loop, at most.</summary>
    public const int ReceiveSlots = 8192;

    private readonly NatsConnection _connection;
    private readonly string[] _sendSubjects;
    private readonly List<DatagramSubscription> _subscriptions = [];
    private readonly Channel<Received> _queue;
    private readonly ConcurrentQueue<byte[]> _free = new();
    private readonly ManualResetEventSlim _arrived = new(false, spinCount: 20);
    private int _allocatedSlots;
    private long _dropped;
    private long _sendDropped;
    private long _oversize;
    private volatile bool _disposed;

    private readonly record struct Received(byte[] Buffer, int Length, int Peer);

    private NatsDatagramChannel(NatsConnection connection, string root, IReadOnlyList<string> peers, int maxDatagramSize)
    {
        _connection = connection;
        Root = root;
        MaxDatagramSize = maxDatagramSize;
        _sendSubjects = peers.Select(p => NatsAddress.DatagramSubject(p, root)).ToArray();
        _queue = Channel.CreateBounded<Received>(new BoundedChannelOptions(ReceiveSlots)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // never reached: a slot is taken before an item is written
            AllowSynchronousContinuations = false,
        });
    }

    /// <summary>Connects, subscribes to one subject per peer and waits until the server has registered them.</summary>
    public static async Task<NatsDatagramChannel> OpenAsync(NatsOpts opts, string root, IReadOnlyList<string> peers, int maxDatagramSize,
        CancellationToken cancellationToken = default)
    {
        var connection = new NatsConnection(opts);
        try
        {
            await connection.ConnectAsync().ConfigureAwait(false);
            long maxPayload = connection.ServerInfo?.MaxPayload ?? maxDatagramSize;
            var channel = new NatsDatagramChannel(connection, root, peers, (int)Math.Min(maxDatagramSize, maxPayload));
            for (int i = 0; i < peers.Count; i++)
            {
                var sub = new DatagramSubscription(connection, NatsAddress.DatagramSubject(root, peers[i]), channel, i);
                channel._subscriptions.Add(sub);
                await connection.AddSubAsync(sub, cancellationToken).ConfigureAwait(false);
            }

            // A round trip: the server has processed the SUBs, so nothing a peer sends from now on is missed.
            await connection.PingAsync(cancellationToken).ConfigureAwait(false);
            return channel;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public string Root { get; }

    public int MaxDatagramSize { get; }

    public int PeerCount => _sendSubjects.Length;

    /// <summary>Datagrams dropped on receive because every slot was queued (the engine's receive loop fell behind).</summary>
    public long ReceiveDropped => Interlocked.Read(ref _dropped);

    /// <summary>Datagrams not sent because the connection was not open, or the publish failed.</summary>
    public long SendDropped => Interlocked.Read(ref _sendDropped);

    /// <summary>Received payloads larger than <see cref="MaxDatagramSize"/> (dropped).</summary>
    public long Oversize => Interlocked.Read(ref _oversize);

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        if (_disposed || _connection.ConnectionState != NatsConnectionState.Open)
        {
            Interlocked.Increment(ref _sendDropped);
            return ValueTask.CompletedTask;
        }

        try
        {
            var pending = _connection.PublishAsync(_sendSubjects[peerIndex], datagram, serializer: NatsRawSerializer<ReadOnlyMemory<byte>>.Default,
                cancellationToken: cancellationToken);
            return pending.IsCompletedSuccessfully ? ValueTask.CompletedTask : AwaitPublish(pending);
        }
        catch (Exception ex) when (ex is NatsException or ObjectDisposedException or InvalidOperationException)
        {
            Interlocked.Increment(ref _sendDropped);
            return ValueTask.CompletedTask;
        }
    }

    private async ValueTask AwaitPublish(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NatsException or ObjectDisposedException or InvalidOperationException)
        {
            Interlocked.Increment(ref _sendDropped);
        }
    }

    /// <summary>
    /// Completes synchronously, as the UDP transport does: the engine's dedicated receive thread waits on an event that
    /// the NATS reader sets, so a wait costs no allocation and no thread-pool hop.
    /// </summary>
    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (_queue.Reader.TryRead(out var item))
            {
                return new ValueTask<DatagramReceiveResult>(Take(item, buffer.Span));
            }

            if (_disposed)
            {
                throw new OperationCanceledException("The channel is closed.");
            }

            // Reset, then look again: an item written after the look sets the event after this reset.
            _arrived.Reset();
            if (_queue.Reader.TryRead(out item))
            {
                return new ValueTask<DatagramReceiveResult>(Take(item, buffer.Span));
            }

            _arrived.Wait(cancellationToken);
        }
    }

    private DatagramReceiveResult Take(in Received item, Span<byte> destination)
    {
        int length = Math.Min(item.Length, destination.Length);
        item.Buffer.AsSpan(0, length).CopyTo(destination);
        _free.Enqueue(item.Buffer);
        return new DatagramReceiveResult(length, item.Peer);
    }

    /// <summary>Called on the client's socket reader: copy the payload into a free slot, or count a drop.</summary>
    private void Deliver(int peer, in ReadOnlySequence<byte> payload)
    {
        if (payload.Length > MaxDatagramSize)
        {
            Interlocked.Increment(ref _oversize);
            return;
        }

        if (!_free.TryDequeue(out var slot))
        {
            if (Interlocked.Increment(ref _allocatedSlots) > ReceiveSlots)
            {
                Interlocked.Decrement(ref _allocatedSlots);
                Interlocked.Increment(ref _dropped);
                return;
            }

            slot = GC.AllocateUninitializedArray<byte>(MaxDatagramSize);
        }

        int length = (int)payload.Length;
        payload.CopyTo(slot);
        if (_queue.Writer.TryWrite(new Received(slot, length, peer)))
        {
            _arrived.Set();
        }
        else
        {
            _free.Enqueue(slot); // closed
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _queue.Writer.TryComplete();
        _arrived.Set();
        try
        {
            _connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Closing a connection whose server is gone: nothing left to release.
        }
    }

    /// <summary>A subscription that hands raw payload bytes to the channel without building a message.</summary>
    private sealed class DatagramSubscription(NatsConnection connection, string subject, NatsDatagramChannel owner, int peer)
        : NatsSubBase(connection, connection.SubscriptionManager, subject, queueGroup: null, opts: null)
    {
        protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
        {
            owner.Deliver(peer, payloadBuffer);
            return ValueTask.CompletedTask;
        }

        protected override void TryComplete()
        {
        }
    }
}
