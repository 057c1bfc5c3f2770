using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;
using NATS.Client.Core;

namespace ClusterSync.Transport.Nats;

/// <summary>
/// A reliable, ordered byte stream between two members over two NATS subjects (one per direction).
/// Every message is <c>type(1) ‖ value(8) ‖ bytes</c>: Data carries its stream offset, Ack the bytes the reader has
/// consumed, Fin ends the sender's direction, Reset aborts. The writer keeps at most <see cref="Window"/> bytes
/// unacknowledged, so the reader's queue and the server's pending buffer stay bounded. NATS core delivers in order
/// from one publisher but may drop (a slow consumer, a reconnect): a Data message whose offset is not the next
/// expected one ends the stream with an <see cref="IOException"/> — full sync then fails cleanly and is retried.
/// Disposing closes both directions, as closing a socket does: the peer's read ends (0) after the data already sent.
/// </summary>
internal sealed class NatsStream : Stream
{
    public const int HeaderSize = 9;
    public const int ChunkData = 60 * 1024;
    public const int Window = 4 * 1024 * 1024;
    private const byte DataType = 1;
    private const byte AckType = 2;
    private const byte FinType = 3;
    private const byte ResetType = 4;

    private readonly NatsConnection _connection;
    private readonly string _sendSubject;
    private readonly Channel<NatsMemoryOwner<byte>> _incoming = Channel.CreateUnbounded<NatsMemoryOwner<byte>>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly SemaphoreSlim _ackSignal = new(0);
    private readonly StreamSubscription _subscription;
    private readonly TimeSpan _stallTimeout;
    private NatsMemoryOwner<byte> _current;
    private int _currentPosition;
    private bool _hasCurrent;
    private long _received;
    private long _consumed;
    private long _lastAckSent;
    private long _sent;
    private long _acked;
    private volatile string? _fault;
    private int _closed;

    public NatsStream(NatsConnection connection, string receiveSubject, string sendSubject, TimeSpan stallTimeout)
    {
        _connection = connection;
        _sendSubject = sendSubject;
        _stallTimeout = stallTimeout;
        _subscription = new StreamSubscription(connection, receiveSubject, this);
    }

    /// <summary>Registers the receive subscription (before the peer learns the subject).</summary>
    public ValueTask SubscribeAsync(CancellationToken cancellationToken) => _connection.AddSubAsync(_subscription, cancellationToken);

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        while (!_hasCurrent)
        {
            if (_incoming.Reader.TryRead(out _current))
            {
                _hasCurrent = true;
                _currentPosition = 0;
                break;
            }

            // Ends with the IOException of a failed stream (a gap, a reset) after the data that arrived before it.
            if (!await _incoming.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return 0; // Fin: the peer closed its direction
            }
        }

        var span = _current.Memory.Span[_currentPosition..];
        int n = Math.Min(span.Length, buffer.Length);
        span[..n].CopyTo(buffer.Span);
        _currentPosition += n;
        if (_currentPosition == _current.Length)
        {
            _current.Dispose();
            _current = default;
            _hasCurrent = false;
        }

        long consumed = Interlocked.Add(ref _consumed, n);
        if (consumed - _lastAckSent >= Window / 4)
        {
            _lastAckSent = consumed;
            await SendControlAsync(AckType, consumed, cancellationToken).ConfigureAwait(false);
        }

        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (buffer.Length > 0)
        {
            int n = Math.Min(ChunkData, buffer.Length);
            while (_sent - Interlocked.Read(ref _acked) + n > Window)
            {
                ThrowIfFaulted();
                if (!await _ackSignal.WaitAsync(_stallTimeout, cancellationToken).ConfigureAwait(false))
                {
                    Fail($"no acknowledgement from the peer for {_stallTimeout.TotalSeconds:F0} s");
                    await SendControlAsync(ResetType, 0, CancellationToken.None).ConfigureAwait(false);
                }
            }

            ThrowIfFaulted();
            var message = ArrayPool<byte>.Shared.Rent(HeaderSize + n);
            try
            {
                message[0] = DataType;
                BinaryPrimitives.WriteInt64BigEndian(message.AsSpan(1), _sent);
                buffer.Span[..n].CopyTo(message.AsSpan(HeaderSize));
                await PublishAsync(message.AsMemory(0, HeaderSize + n), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(message);
            }

            _sent += n;
            buffer = buffer[n..];
        }
    }

    public override void Flush()
    {
    }

    /// <summary>Nothing to flush: the NATS client writes its buffer to the socket continuously.</summary>
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private void ThrowIfFaulted()
    {
        if (_fault is { } fault)
        {
            throw new IOException($"NATS stream {_sendSubject}: {fault}");
        }

        if (Volatile.Read(ref _closed) != 0)
        {
            throw new ObjectDisposedException(nameof(NatsStream));
        }
    }

    private void Fail(string reason)
    {
        _fault ??= reason;
        _incoming.Writer.TryComplete(new IOException($"NATS stream {_sendSubject}: {reason}"));
        _ackSignal.Release();
    }

    private async ValueTask PublishAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        try
        {
            await _connection.PublishAsync(_sendSubject, message, serializer: NatsRawSerializer<ReadOnlyMemory<byte>>.Default,
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (NatsException ex)
        {
            Fail(ex.Message);
            throw new IOException($"NATS stream {_sendSubject}: {ex.Message}", ex);
        }
    }

    private ValueTask SendControlAsync(byte type, long value, CancellationToken cancellationToken)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        header[0] = type;
        BinaryPrimitives.WriteInt64BigEndian(header[1..], value);
        return PublishAsync(header.ToArray(), cancellationToken);
    }

    /// <summary>On the client's socket reader: queue data (checking its offset), take acks, Fin and Reset.</summary>
    private void Deliver(in ReadOnlySequence<byte> payload)
    {
        if (payload.Length < HeaderSize || _fault is not null)
        {
            if (_fault is null)
            {
                Fail("malformed message");
            }

            return;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        payload.Slice(0, HeaderSize).CopyTo(header);
        long value = BinaryPrimitives.ReadInt64BigEndian(header[1..]);
        switch (header[0])
        {
            case DataType:
                int length = (int)payload.Length - HeaderSize;
                if (value != _received)
                {
                    Fail($"gap: expected offset {_received}, got {value} (a message was dropped)");
                    return;
                }

                if (_received + length - Interlocked.Read(ref _consumed) > 2L * Window)
                {
                    Fail("the peer ignored the flow-control window");
                    return;
                }

                var owner = NatsMemoryOwner<byte>.Allocate(length);
                payload.Slice(HeaderSize).CopyTo(owner.Span);
                _received += length;
                if (!_incoming.Writer.TryWrite(owner))
                {
                    owner.Dispose();
                }

                break;
            case AckType:
                long acked = Interlocked.Read(ref _acked);
                if (value > acked)
                {
                    Interlocked.Exchange(ref _acked, value);
                    _ackSignal.Release();
                }

                break;
            case FinType:
                _incoming.Writer.TryComplete();
                break;
            case ResetType:
                Fail("reset by the peer");
                break;
            default:
                Fail($"unknown message type {header[0]}");
                break;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        if (_fault is null && _connection.ConnectionState == NatsConnectionState.Open)
        {
            try
            {
                await SendControlAsync(FinType, _sent, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The connection went away while closing: the peer sees the stream end by its own timeout.
            }
        }

        _fault ??= "closed";
        _incoming.Writer.TryComplete();
        _ackSignal.Release();
        try
        {
            await _subscription.DisposeAsync().ConfigureAwait(false);
        }
        catch (NatsException)
        {
        }

        if (_hasCurrent)
        {
            _current.Dispose();
            _hasCurrent = false;
        }

        while (_incoming.Reader.TryRead(out var left))
        {
            left.Dispose();
        }

        GC.SuppressFinalize(this);
    }

    private sealed class StreamSubscription(NatsConnection connection, string subject, NatsStream owner)
        : NatsSubBase(connection, connection.SubscriptionManager, subject, queueGroup: null, opts: null)
    {
        protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
        {
            owner.Deliver(payloadBuffer);
            return ValueTask.CompletedTask;
        }

        protected override void TryComplete()
        {
        }
    }
}
