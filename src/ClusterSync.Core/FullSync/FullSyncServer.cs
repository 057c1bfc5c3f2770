using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using ClusterSync.Engine;
using ClusterSync.Protocol;
using ClusterSync.Security;
using ClusterSync.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.FullSync;

/// <summary>
/// Serves snapshots of an engine's table to authenticated peers over a stream channel (TCP port 256 by default),
/// several at once. Each transfer: handshake, Begin (the cut), Records frames, End. See README.md.
/// </summary>
public sealed class FullSyncServer : IAsyncDisposable
{
    public const int DefaultPort = 256;

    /// <summary>Records are packed into frames of up to this many plaintext bytes.</summary>
    public const int FrameData = 1 << 20;

    /// <summary>Slots walked per table-lock hold.</summary>
    public const int ChunkSlots = 4096;

    private readonly SyncEngine _engine;
    private readonly IStreamChannel _channel;
    private readonly ClusterKey _key;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HashSet<byte> _peers;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _transfers = [];
    private Task? _acceptLoop;
    private int _active;

    public FullSyncServer(SyncEngine engine, IStreamChannel channel, ClusterKey key, FullSyncCounters? counters = null,
        TimeProvider? time = null, ILogger? logger = null)
    {
        _engine = engine;
        _channel = channel;
        _key = key;
        Counters = counters ?? new FullSyncCounters();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _peers = [.. engine.Options.PeerMemberIds];
    }

    public FullSyncCounters Counters { get; }

    /// <summary>Transfers served at once; more are refused (Busy) and retried by the joiner.</summary>
    public int MaxConcurrent { get; init; } = 4;

    /// <summary>
    /// Whether this member's table is a complete replica it may serve (the host passes "Standby or Active"; null:
    /// always). While false an authenticated client is refused as busy and retries: a member that restarted a moment
    /// ago, still joining, would otherwise hand a joiner its empty or partial table as if it were the cluster's (a
    /// joiner that still saw its previous life Active pulled 0 entries, became Standby and took over: simulator seed 3332).
    /// </summary>
    public Func<bool>? CanServe { get; init; }

    /// <summary>
    /// A client must prove the cluster key (its ClientFinish verified) within this time of connecting, else the
    /// connection is cut and counted (<c>full_sync_unauthenticated_cut</c>). No transfer slot is held meanwhile.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Connections still in their handshake (not yet authenticated) from one source address; more are cut at once.</summary>
    public int MaxPendingPerSource { get; init; } = 4;

    /// <summary>Connections still in their handshake in all; more are cut at once.</summary>
    public int MaxPendingTotal { get; init; } = 16;

    private readonly HandshakeAdmission _admission = new();

    public void Start()
    {
        FullSyncLog.Listening(_logger, _engine.MemberId);
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    private async Task AcceptLoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            Stream stream;
            try
            {
                stream = await _channel.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }

                FullSyncLog.AcceptFailed(_logger, ex);
                continue;
            }

            // Unauthenticated connections are bounded per source address and in all: a flood of idle handshakes
            // cannot starve the authenticated members (they hold no transfer slot either).
            var source = (stream as System.Net.Sockets.NetworkStream)?.Socket.RemoteEndPoint is System.Net.IPEndPoint ep ? ep.Address.ToString() : "";
            if (!_admission.TryEnter(source, MaxPendingPerSource, MaxPendingTotal))
            {
                Interlocked.Increment(ref Counters.HandshakesOverLimit);
                await stream.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            var task = Task.Run(() => ServeAsync(stream, token, source), CancellationToken.None);
            lock (_transfers)
            {
                _transfers.RemoveAll(t => t.IsCompleted);
                _transfers.Add(task);
            }
        }
    }

    /// <summary>
    /// Serves one snapshot on an accepted stream (internal for tests); disposes the stream. Never throws. A transfer
    /// slot is claimed only once the client has proven the key; with none free the client gets an Error frame (busy).
    /// <paramref name="admittedSource"/>: the source address the accept loop counted as pending (released here).
    /// </summary>
    internal async Task<FullSyncStatus> ServeAsync(Stream stream, CancellationToken cancellationToken, string? admittedSource = null)
    {
        byte peer = 0;
        bool slot = false;
        bool pending = admittedSource is not null;
        long start = _time.GetTimestamp();
        HandshakeResult? hs = null;
        try
        {
            await using (stream.ConfigureAwait(false))
            {
                using (var handshakeTimeout = new CancellationTokenSource(HandshakeTimeout, _time))
                using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, handshakeTimeout.Token))
                {
                    hs = await FullSyncHandshake.ServerAsync(stream, _key, _engine.MemberId, Admit, linked.Token).ConfigureAwait(false);
                }

                if (pending)
                {
                    _admission.Exit(admittedSource!);
                    pending = false;
                }

                peer = hs.PeerMember;
                if (!hs.Ok)
                {
                    Interlocked.Increment(ref Counters.UnauthenticatedCut);
                    return Failed(hs.Status, hs.Error ?? "handshake failed", peer);
                }

                if (CanServe is { } canServe && !canServe())
                {
                    await SendBusyAsync(stream, hs.Send!, cancellationToken).ConfigureAwait(false);
                    return Failed(FullSyncStatus.Refused, "not synchronized: this member is still joining", peer);
                }

                // Authenticated: only now may the client hold a transfer slot.
                if (Interlocked.Increment(ref _active) > MaxConcurrent)
                {
                    Interlocked.Decrement(ref _active);
                    await SendBusyAsync(stream, hs.Send!, cancellationToken).ConfigureAwait(false);
                    return Failed(FullSyncStatus.Refused, $"busy: {MaxConcurrent} transfers running", peer);
                }

                slot = true;

                var (status, entries, bytes) = await StreamSnapshotAsync(stream, hs.Send!, peer, cancellationToken).ConfigureAwait(false);
                if (status != FullSyncStatus.Completed)
                {
                    return Failed(status, "the transfer was interrupted", peer);
                }

                Interlocked.Increment(ref Counters.Served);
                FullSyncLog.ServeDone(_logger, peer, entries, bytes, _time.GetElapsedTime(start).TotalSeconds);
                return FullSyncStatus.Completed;
            }
        }
        catch (OperationCanceledException)
        {
            if (hs is null)
            {
                Interlocked.Increment(ref Counters.UnauthenticatedCut); // the key was not proven in time
            }

            return Failed(cancellationToken.IsCancellationRequested ? FullSyncStatus.Canceled : FullSyncStatus.TimedOut, "canceled or timed out", peer);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            if (hs is null)
            {
                Interlocked.Increment(ref Counters.UnauthenticatedCut);
            }

            return Failed(FullSyncStatus.Truncated, ex.Message, peer);
        }
        finally
        {
            if (pending)
            {
                _admission.Exit(admittedSource!);
            }

            hs?.DisposeKeys();
            if (slot)
            {
                Interlocked.Decrement(ref _active);
            }
        }
    }

    /// <summary>At ClientHello (nothing proven yet): only whether the member is a configured peer. No slot is claimed here.</summary>
    private HelloStatus Admit(byte member) => _peers.Contains(member) ? HelloStatus.Accepted : HelloStatus.UnknownMember;

    /// <summary>Tells an authenticated client that every transfer slot is taken: an Error frame (reason 2, busy); it retries.</summary>
    private static async Task SendBusyAsync(Stream stream, FrameProtection sealer, CancellationToken cancellationToken)
    {
        var frame = new byte[FrameProtection.Overhead + 2];
        frame[FrameProtection.LengthSize] = (byte)FrameType.Error;
        frame[FrameProtection.LengthSize + 1] = (byte)HelloStatus.Busy;
        int n = sealer.Seal(frame, 2);
        await stream.WriteAsync(frame.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private FullSyncStatus Failed(FullSyncStatus status, string error, byte peer)
    {
        Counters.CountFailure(status, serving: true, peer);
        FullSyncLog.ServeFailed(_logger, peer, status, error);
        return status;
    }

    private async Task<(FullSyncStatus Status, long Entries, long Bytes)> StreamSnapshotAsync(Stream stream, FrameProtection sealer, byte peer, CancellationToken cancellationToken)
    {
        var cut = _engine.CutSnapshot();
        FullSyncLog.ServeStarted(_logger, peer, cut.Epoch, cut.Sequence, cut.Total);
        int bufferSize = FrameData + 64 + FrameProtection.Overhead;
        var front = ArrayPool<byte>.Shared.Rent(bufferSize);
        var back = ArrayPool<byte>.Shared.Rent(bufferSize);
        Task pending = Task.CompletedTask;
        long entries = 0;
        long bytes = 0;
        try
        {
            // Begin: source member, epoch, cut sequence, total (estimate).
            int p = FrameProtection.LengthSize;
            front[p++] = (byte)FrameType.Begin;
            front[p++] = cut.Member;
            BinaryPrimitives.WriteUInt64BigEndian(front.AsSpan(p), cut.Epoch);
            BinaryPrimitives.WriteUInt64BigEndian(front.AsSpan(p + 8), cut.Sequence);
            BinaryPrimitives.WriteInt64BigEndian(front.AsSpan(p + 16), cut.Total);
            p += 24;
            int n = sealer.Seal(front, p - FrameProtection.LengthSize);
            await stream.WriteAsync(front.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            bytes += n;

            const int RecordsStart = FrameProtection.LengthSize + 1 + 4;
            int limit = FrameProtection.LengthSize + FrameData;
            int pos = RecordsStart;
            int count = 0;
            int cursor = 0;
            while (cursor >= 0)
            {
                // Walk and encode straight from the table into the frame (no per-entry copy), 4,096 slots per lock hold.
                int wrote = _engine.EncodeSnapshotChunk(ref cursor, front.AsSpan(0, limit), ref pos, ChunkSlots);
                count += wrote;
                entries += wrote;
                if (cursor >= 0 && pos + RecordCodec.MaxRecordSize > limit)
                {
                    (pending, n) = await FlushAsync(stream, sealer, front, pos, count, pending, cancellationToken).ConfigureAwait(false);
                    bytes += n;
                    (front, back) = (back, front);
                    pos = RecordsStart;
                    count = 0;
                    Report(peer, entries, cut.Total, bytes);
                }
            }

            if (count > 0)
            {
                (pending, n) = await FlushAsync(stream, sealer, front, pos, count, pending, cancellationToken).ConfigureAwait(false);
                bytes += n;
                (front, back) = (back, front);
            }

            await pending.ConfigureAwait(false);
            p = FrameProtection.LengthSize;
            front[p++] = (byte)FrameType.End;
            BinaryPrimitives.WriteInt64BigEndian(front.AsSpan(p), entries);
            p += 8;
            n = sealer.Seal(front, p - FrameProtection.LengthSize);
            await stream.WriteAsync(front.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            bytes += n;
            Interlocked.Add(ref Counters.EntriesSent, entries);
            Interlocked.Add(ref Counters.BytesSent, bytes);
            Report(peer, entries, cut.Total, bytes);

            // Wait for the joiner to close: it has read everything (a clean shutdown, not a reset).
            await stream.ReadAsync(front.AsMemory(0, 1), cancellationToken).ConfigureAwait(false);
            return (FullSyncStatus.Completed, entries, bytes);
        }
        finally
        {
            try
            {
                await pending.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }

            ArrayPool<byte>.Shared.Return(front);
            ArrayPool<byte>.Shared.Return(back);
        }
    }

    /// <summary>Seals a Records frame and starts writing it once the previous write has finished (double buffering).</summary>
    private static async Task<(Task Write, int Length)> FlushAsync(Stream stream, FrameProtection sealer, byte[] frame, int pos, int count, Task previous,
        CancellationToken cancellationToken)
    {
        frame[FrameProtection.LengthSize] = (byte)FrameType.Records;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(FrameProtection.LengthSize + 1), count);
        // Seal while the previous frame is still being written (it is in the other buffer; frames seal in order).
        int n = sealer.Seal(frame, pos - FrameProtection.LengthSize);
        await previous.ConfigureAwait(false);
        return (stream.WriteAsync(frame.AsMemory(0, n), cancellationToken).AsTask(), n);
    }

    /// <summary>Progress of every transfer (entries sent / total), per frame.</summary>
    public IProgress<FullSyncProgress>? Progress { get; init; }

    private void Report(byte peer, long entries, long total, long bytes) => Progress?.Report(new FullSyncProgress(peer, entries, total, bytes));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_channel is IDisposable d)
        {
            d.Dispose();
        }

        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        Task[] running;
        lock (_transfers)
        {
            running = [.. _transfers];
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>Counts connections still in their full-sync handshake, per source address and in all (accept loop and serving tasks).</summary>
internal sealed class HandshakeAdmission
{
    private readonly Dictionary<string, int> _bySource = new(StringComparer.Ordinal);
    private int _total;

    public int Pending
    {
        get
        {
            lock (_bySource)
            {
                return _total;
            }
        }
    }

    /// <summary>Admits one more pending handshake from <paramref name="source"/> unless a limit is reached.</summary>
    public bool TryEnter(string source, int perSource, int total)
    {
        lock (_bySource)
        {
            _bySource.TryGetValue(source, out int n);
            if (n >= perSource || _total >= total)
            {
                return false;
            }

            _bySource[source] = n + 1;
            _total++;
            return true;
        }
    }

    public void Exit(string source)
    {
        lock (_bySource)
        {
            if (_bySource.TryGetValue(source, out int n))
            {
                if (n <= 1)
                {
                    _bySource.Remove(source);
                }
                else
                {
                    _bySource[source] = n - 1;
                }

                _total--;
            }
        }
    }
}
