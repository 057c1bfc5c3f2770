using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using NATS.Client.Core;

namespace ClusterSync.Transport.Nats;

/// <summary>
/// Full-sync streams over NATS. A member accepts opens on <c>&lt;root&gt;.s.open</c> (request/reply); the opener picks a
/// random stream id, subscribes to <c>&lt;own root&gt;.s.&lt;id&gt;</c>, and asks with <c>own root ‖ '\n' ‖ id</c>; the acceptor
/// checks that the opener is a configured peer, subscribes to <c>&lt;its root&gt;.s.&lt;id&gt;</c>, and replies 1 (accepted) or 0.
/// Authentication is full sync's own handshake on top (the cluster key), as over TCP.
/// </summary>
internal sealed class NatsStreamChannel : IStreamChannel, IDisposable
{
    public const int AcceptBacklog = 16;
    private static readonly TimeSpan s_openTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_stallTimeout = TimeSpan.FromSeconds(30);
    private readonly NatsConnection _connection;
    private readonly string _root;
    private readonly string[] _peers;
    private readonly Channel<NatsStream> _accepted = Channel.CreateBounded<NatsStream>(new BoundedChannelOptions(AcceptBacklog)
    {
        SingleReader = false,
        SingleWriter = false,
        FullMode = BoundedChannelFullMode.Wait,
    });
    private OpenSubscription? _openSubscription;
    private long _refused;
    private int _disposed;

    private NatsStreamChannel(NatsConnection connection, string root, IReadOnlyList<string> peers)
    {
        _connection = connection;
        _root = root;
        _peers = [.. peers];
    }

    public static async Task<NatsStreamChannel> OpenAsync(NatsOpts opts, string root, IReadOnlyList<string> peers, CancellationToken cancellationToken = default)
    {
        var connection = new NatsConnection(opts);
        try
        {
            await connection.ConnectAsync().ConfigureAwait(false);
            var channel = new NatsStreamChannel(connection, root, peers);
            channel._openSubscription = new OpenSubscription(connection, NatsAddress.StreamOpenSubject(root), channel);
            await connection.AddSubAsync(channel._openSubscription, cancellationToken).ConfigureAwait(false);
            await connection.PingAsync(cancellationToken).ConfigureAwait(false);
            return channel;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens refused because the opener is not a configured peer, or the accept backlog was full.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public async ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default)
    {
        string peer = _peers[peerIndex];
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var stream = new NatsStream(_connection, NatsAddress.StreamSubject(_root, id), NatsAddress.StreamSubject(peer, id), s_stallTimeout);
        try
        {
            await stream.SubscribeAsync(cancellationToken).ConfigureAwait(false);
            var request = Encoding.UTF8.GetBytes($"{_root}\n{id}");
            NatsMsg<byte[]> reply;
            try
            {
                reply = await _connection.RequestAsync<byte[], byte[]>(NatsAddress.StreamOpenSubject(peer), request,
                    requestSerializer: NatsRawSerializer<byte[]>.Default, replySerializer: NatsRawSerializer<byte[]>.Default,
                    replyOpts: new NatsSubOpts { Timeout = s_openTimeout }, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (NatsException ex)
            {
                throw new IOException($"NATS: cannot open a stream to {peer}: {ex.Message}", ex);
            }

            if (reply.Data is not [1])
            {
                throw new IOException($"NATS: {peer} refused the stream (this member '{_root}' is not one of its configured peers, or it is busy)");
            }

            return stream;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException ex)
        {
            throw new ObjectDisposedException("The NATS stream channel is closed.", ex);
        }
    }

    private async Task HandleOpenAsync(string? replyTo, byte[] request)
    {
        if (replyTo is null)
        {
            return;
        }

        string text = Encoding.UTF8.GetString(request);
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        string opener = newline > 0 ? text[..newline] : "";
        string id = newline > 0 ? text[(newline + 1)..] : "";
        bool known = Array.IndexOf(_peers, opener) >= 0 && id.Length == 16 && id.All(char.IsAsciiHexDigitLower);
        NatsStream? stream = null;
        try
        {
            if (known)
            {
                stream = new NatsStream(_connection, NatsAddress.StreamSubject(_root, id), NatsAddress.StreamSubject(opener, id), s_stallTimeout);
                await stream.SubscribeAsync(CancellationToken.None).ConfigureAwait(false);
                if (!_accepted.Writer.TryWrite(stream))
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                    stream = null;
                }
            }

            if (stream is null)
            {
                Interlocked.Increment(ref _refused);
            }

            // The SUB above went out before this reply on the same connection, so the opener's first bytes find it.
            await _connection.PublishAsync(replyTo, new byte[] { stream is null ? (byte)0 : (byte)1 }, serializer: NatsRawSerializer<byte[]>.Default)
                .ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NatsException or ObjectDisposedException)
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out var pending))
        {
            pending.Dispose();
        }

        try
        {
            _connection.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
    }

    private sealed class OpenSubscription(NatsConnection connection, string subject, NatsStreamChannel owner)
        : NatsSubBase(connection, connection.SubscriptionManager, subject, queueGroup: null, opts: null)
    {
        protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
        {
            if (payloadBuffer.Length <= 256)
            {
                // Off the socket reader: the handler subscribes and publishes, which must not wait on this thread.
                var request = payloadBuffer.ToArray();
                _ = Task.Run(() => owner.HandleOpenAsync(replyTo, request));
            }

            return ValueTask.CompletedTask;
        }

        protected override void TryComplete()
        {
        }
    }
}
