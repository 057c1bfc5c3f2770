using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Protocol;
using ClusterSync.Security;
using ClusterSync.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.FullSync;

/// <summary>
/// Pulls a snapshot from a peer into an engine (join, restart, resync needed): connects, authenticates, applies
/// every record by version while delta sync keeps running, then covers the peer's delta stream up to the cut.
/// Expected failures come back as a <see cref="FullSyncResult"/> and are counted; a frame that fails
/// authentication ends the transfer before anything in it is applied.
/// </summary>
public sealed class FullSyncClient
{
    private const int ApplyBatch = 1024;
    private readonly SyncEngine _engine;
    private readonly IStreamChannel _channel;
    private readonly ClusterKey _key;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public FullSyncClient(SyncEngine engine, IStreamChannel channel, ClusterKey key, FullSyncCounters? counters = null,
        TimeProvider? time = null, ILogger? logger = null)
    {
        _engine = engine;
        _channel = channel;
        _key = key;
        Counters = counters ?? new FullSyncCounters();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    public FullSyncCounters Counters { get; }

    /// <summary>Progress (entries received / total announced), once per frame.</summary>
    public IProgress<FullSyncProgress>? Progress { get; init; }

    /// <summary>Connecting plus the handshake must finish within this time.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>No frame for this long ends the transfer.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Pulls a snapshot from the peer at <paramref name="peerIndex"/> of the stream channel.</summary>
    public async Task<FullSyncResult> PullAsync(int peerIndex, CancellationToken cancellationToken = default)
    {
        long start = _time.GetTimestamp();
        Stream stream;
        try
        {
            using var timeout = new CancellationTokenSource(HandshakeTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            stream = await _channel.ConnectAsync(peerIndex, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return Finish(Failure(FullSyncStatus.ConnectFailed, ex.Message, 0, start));
        }

        await using (stream.ConfigureAwait(false))
        {
            return await PullAsync(stream, cancellationToken, start).ConfigureAwait(false);
        }
    }

    /// <summary>Pulls a snapshot over an open stream (tests); does not dispose it.</summary>
    internal async Task<FullSyncResult> PullAsync(Stream stream, CancellationToken cancellationToken, long? startTimestamp = null)
    {
        long start = startTimestamp ?? _time.GetTimestamp();
        HandshakeResult? hs = null;

        // Mark before connecting (the snapshot replaces the table, FullSync/README.md "Replace"): every change applied
        // from here on, including those sent after the source's cut that overtake its Begin, keeps its entry.
        long replace = _engine.BeginReplace();
        try
        {
            using (var timeout = new CancellationTokenSource(HandshakeTimeout, _time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token))
            {
                hs = await FullSyncHandshake.ClientAsync(stream, _key, _engine.MemberId, linked.Token).ConfigureAwait(false);
            }

            if (!hs.Ok)
            {
                return Finish(Failure(hs.Status, hs.Error ?? "handshake failed", hs.PeerMember, start));
            }

            return Finish(await ReceiveAsync(stream, hs.Receive!, hs.PeerMember, start, replace, cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            var status = cancellationToken.IsCancellationRequested ? FullSyncStatus.Canceled : FullSyncStatus.TimedOut;
            return Finish(Failure(status, "canceled or timed out", hs?.PeerMember ?? 0, start));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            return Finish(Failure(FullSyncStatus.Truncated, ex.Message, hs?.PeerMember ?? 0, start));
        }
        finally
        {
            hs?.DisposeKeys();
            _engine.EndReplace(replace, commit: false, 0); // a pull that did not complete removes nothing (no-op after a completed one)
        }
    }

    private FullSyncResult Failure(FullSyncStatus status, string error, byte peer, long start, long entries = 0, long applied = 0, long bytes = 0)
        => new(status, error, peer, entries, applied, bytes, _time.GetElapsedTime(start).TotalSeconds, 0, 0);

    private FullSyncResult Finish(FullSyncResult result)
    {
        if (result.Succeeded)
        {
            Interlocked.Increment(ref Counters.Received);
            FullSyncLog.PullDone(_logger, result.Peer, result.Entries, result.Applied, result.Bytes, result.Seconds, result.SourceEpoch, result.CutSequence);
            return result;
        }

        Counters.CountFailure(result.Status, serving: false, result.Peer);
        FullSyncLog.PullFailed(_logger, result.Peer, result.Status, result.Error ?? "");
        return result;
    }

    /// <summary>A frame read and opened by the reader: <c>Length</c> is the plaintext length, or a negative code.</summary>
    private readonly record struct OpenedFrame(byte[] Buffer, int Plain, int Sealed, Exception? Error);

    private const int EndOfStream = -1;
    private const int BadLength = -2;
    private const int BadTag = -3;
    private const int PipelineBuffers = 4;

    private async Task<FullSyncResult> ReceiveAsync(Stream stream, FrameProtection opener, byte peer, long start, long replace, CancellationToken cancellationToken)
    {
        // Two stages: a reader task reads and opens (decrypts) frames ahead into pooled 1 MiB buffers, while this one
        // decodes and applies; on two cores, AES-GCM and socket reads overlap the table work.
        var staging = ArrayPool<ConnectionEvent>.Shared.Rent(ApplyBatch);
        var free = Channel.CreateBounded<byte[]>(PipelineBuffers);
        var opened = Channel.CreateBounded<OpenedFrame>(new BoundedChannelOptions(PipelineBuffers) { SingleReader = true, SingleWriter = true });
        var buffers = new byte[PipelineBuffers][];
        for (int i = 0; i < buffers.Length; i++)
        {
            buffers[i] = ArrayPool<byte>.Shared.Rent(FrameProtection.MaxPlaintext + FrameProtection.Overhead);
            free.Writer.TryWrite(buffers[i]);
        }

        long entries = 0;
        long applied = 0;
        long bytes = 0;
        bool begun = false;
        byte source = 0;
        ulong epoch = 0;
        ulong cutSequence = 0;
        long total = 0;
        bool covered = false;
        bool completed = false;
        using var idle = new CancellationTokenSource(IdleTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token);
        var reader = Task.Run(() => ReadFramesAsync(stream, opener, free.Reader, opened.Writer, idle, linked.Token), CancellationToken.None);
        try
        {
            while (true)
            {
                var frame = await opened.Reader.ReadAsync(linked.Token).ConfigureAwait(false);
                if (frame.Error is not null)
                {
                    ExceptionDispatchInfo.Throw(frame.Error);
                }

                if (frame.Sealed > 0)
                {
                    bytes += frame.Sealed;
                }

                switch (frame.Plain)
                {
                    case EndOfStream:
                        return Failure(FullSyncStatus.Truncated, "the stream ended before the End frame", peer, start, entries, applied, bytes);
                    case BadLength:
                        return Failure(FullSyncStatus.Malformed, "a frame length is out of bounds", peer, start, entries, applied, bytes);
                    case BadTag:
                        return Failure(FullSyncStatus.AuthenticationFailed, $"frame {opener.Counter - 1} failed authentication; nothing in it was applied",
                            peer, start, entries, applied, bytes);
                }

                var type = (FrameType)frame.Buffer[FrameProtection.LengthSize];
                var body = new ReadOnlySpan<byte>(frame.Buffer, FrameProtection.LengthSize + 1, frame.Plain - 1);
                switch (type)
                {
                    case FrameType.Begin when !begun && body.Length == 25:
                        begun = true;
                        source = body[0];
                        epoch = BinaryPrimitives.ReadUInt64BigEndian(body[1..]);
                        cutSequence = BinaryPrimitives.ReadUInt64BigEndian(body[9..]);
                        total = BinaryPrimitives.ReadInt64BigEndian(body[17..]);
                        if (source != peer)
                        {
                            return Failure(FullSyncStatus.Malformed, $"the snapshot names member {source}, the handshake {peer}", peer, start);
                        }

                        // Cover the source's delta stream up to the cut now, not at End: the joiner stops NACKing
                        // sequences the snapshot is about to deliver (a first-contact retransmission storm would
                        // compete with the transfer). If the transfer fails from here on, resync needed is raised
                        // again (finally below), so the written-off sequences are never silently lost.
                        if (!_engine.MarkSynchronizedThrough(source, epoch, cutSequence))
                        {
                            return Failure(FullSyncStatus.StaleEpoch, $"member {source} restarted since epoch {epoch}", peer, start);
                        }

                        covered = true;
                        break;
                    case FrameType.Records when begun && body.Length >= 4:
                    {
                        var (ok, n, a) = ApplyRecords(body, staging);
                        entries += n;
                        applied += a;
                        Interlocked.Add(ref Counters.EntriesReceived, n);
                        Interlocked.Add(ref Counters.EntriesApplied, a);
                        if (!ok)
                        {
                            return Failure(FullSyncStatus.Malformed, "a Records frame did not parse; the rest of it was not applied", peer, start, entries, applied, bytes);
                        }

                        Progress?.Report(new FullSyncProgress(peer, entries, total, bytes));
                        break;
                    }

                    case FrameType.End when begun && body.Length == 8:
                        long announced = BinaryPrimitives.ReadInt64BigEndian(body);
                        if (announced != entries)
                        {
                            return Failure(FullSyncStatus.Malformed, $"the source sent {announced} entries, {entries} arrived", peer, start, entries, applied, bytes);
                        }

                        FullSyncLog.Progress(_logger, peer, entries, total, bytes);
                        if (!_engine.MarkSynchronizedThrough(source, epoch, cutSequence))
                        {
                            return Failure(FullSyncStatus.StaleEpoch, $"member {source} restarted since epoch {epoch}", peer, start, entries, applied, bytes);
                        }

                        completed = true;
                        // The snapshot replaces the table (no merge): what this member held before the pull, the snapshot
                        // does not name and no change since touched is removed.
                        long removed = _engine.EndReplace(replace, commit: true, source);
                        Interlocked.Add(ref Counters.EntriesRemoved, removed);
                        return new FullSyncResult(FullSyncStatus.Completed, null, peer, entries, applied, bytes, _time.GetElapsedTime(start).TotalSeconds, epoch, cutSequence)
                        {
                            Removed = removed,
                        };
                    case FrameType.Error:
                        return Failure(FullSyncStatus.Refused, "the source reported an error", peer, start, entries, applied, bytes);
                    default:
                        return Failure(FullSyncStatus.Malformed, $"unexpected frame {type} ({body.Length} bytes)", peer, start, entries, applied, bytes);
                }

                free.Writer.TryWrite(frame.Buffer);
            }
        }
        finally
        {
            // Stop the reader (it may be waiting for a buffer or a frame) before its buffers go back to the pool.
            await linked.CancelAsync().ConfigureAwait(false);
            await reader.ConfigureAwait(false);
            foreach (var buffer in buffers)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            ArrayPool<ConnectionEvent>.Shared.Return(staging);
            if (covered && !completed)
            {
                _engine.RaiseResyncAfterFailedPull(source);
            }
        }
    }

    /// <summary>
    /// The reader stage: reads and opens frames in order into free buffers and hands them on, until End, Error, an
    /// unexpected type, a failure (passed on as a code or an exception) or cancellation. Never throws.
    /// </summary>
    private async Task ReadFramesAsync(Stream stream, FrameProtection opener, ChannelReader<byte[]> free, ChannelWriter<OpenedFrame> opened,
        CancellationTokenSource idle, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var buffer = await free.ReadAsync(cancellationToken).ConfigureAwait(false);
                int length = await ReadFrameAsync(stream, buffer, cancellationToken).ConfigureAwait(false);
                idle.CancelAfter(IdleTimeout);
                if (length < 0)
                {
                    await opened.WriteAsync(new OpenedFrame(buffer, length, 0, null), cancellationToken).ConfigureAwait(false);
                    return;
                }

                Interlocked.Add(ref Counters.BytesReceived, length);
                int plain = opener.Open(buffer.AsSpan(0, length));
                await opened.WriteAsync(new OpenedFrame(buffer, plain < 0 ? BadTag : plain, length, null), cancellationToken).ConfigureAwait(false);
                if (plain < 0 || (FrameType)buffer[FrameProtection.LengthSize] is not (FrameType.Begin or FrameType.Records))
                {
                    return; // nothing after this frame is read
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The receiver stopped (or timed out): it reports why.
        }
        catch (Exception ex)
        {
            // Passed on and rethrown by the receiver (an I/O error ends the transfer as Truncated).
            try
            {
                await opened.WriteAsync(new OpenedFrame([], 0, 0, ex), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Reads one whole frame into <paramref name="buffer"/>: its length, -1 at the end of the stream, -2 for a bad length.</summary>
    private static async Task<int> ReadFrameAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        if (!await FullSyncHandshake.ReadAllAsync(stream, buffer.AsMemory(0, FrameProtection.LengthSize), cancellationToken).ConfigureAwait(false))
        {
            return -1;
        }

        int sealedLength = FrameProtection.ReadSealedLength(buffer);
        if (sealedLength < 0)
        {
            return -2;
        }

        return await FullSyncHandshake.ReadAllAsync(stream, buffer.AsMemory(FrameProtection.LengthSize, sealedLength), cancellationToken).ConfigureAwait(false)
            ? FrameProtection.LengthSize + sealedLength
            : -1;
    }

    /// <summary>Decodes a Records body (<c>count(4) record*count</c>) and applies it in batches; stops at the first bad record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (bool Ok, int Records, int Applied) ApplyRecords(ReadOnlySpan<byte> body, ConnectionEvent[] staging)
    {
        int count = BinaryPrimitives.ReadInt32BigEndian(body);
        var records = body[4..];
        int done = 0;
        int applied = 0;
        while (done < count)
        {
            int want = Math.Min(ApplyBatch, count - done);
            int n = RecordCodec.ReadMany(ref records, staging.AsSpan(0, want));

            applied += _engine.ApplySnapshot(staging.AsSpan(0, n));
            done += n;
            if (n < want)
            {
                if (RecordCodec.TryRead(records, out _, out bool badExtension) == 0 && badExtension)
                {
                    Interlocked.Increment(ref Counters.RecordsBadExtension);
                }

                return (false, done, applied);
            }
        }

        return (count >= 0 && records.Length == 0, done, applied);
    }
}
