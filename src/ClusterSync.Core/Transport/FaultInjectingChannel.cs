using System.Buffers;

namespace ClusterSync.Transport;

/// <summary>
/// Wraps a channel and damages what it sends, as a bad sync network would: drops, duplicates, reorders
/// (holds a datagram back and sends it after later ones), or cuts the link entirely (a partition).
/// Seeded, so a failing run can be replayed. For tests, benchmarks and the demo; never configured by default.
/// </summary>
public sealed class FaultInjectingChannel : IDatagramChannel, IReceiveDropCounts, IDatagramBatchSender
{
    private readonly IDatagramChannel _inner;
    private readonly Random _random;
    private readonly object _sync = new();
    private readonly List<(byte[] Buffer, int Length, int Peer)> _held = [];

    public FaultInjectingChannel(IDatagramChannel inner, int seed)
    {
        _inner = inner;
        _random = new Random(seed);
    }

    public double DropRate { get; set; }

    public double DuplicateRate { get; set; }

    public double ReorderRate { get; set; }

    /// <summary>When set, every datagram is dropped (a silent link failure).</summary>
    public bool Partitioned { get; set; }

    public long Dropped { get; private set; }

    public long Duplicated { get; private set; }

    public long Reordered { get; private set; }

    public int MaxDatagramSize => _inner.MaxDatagramSize;

    public int PeerCount => _inner.PeerCount;

    /// <inheritdoc />
    public long EmptyDatagrams => (_inner as IReceiveDropCounts)?.EmptyDatagrams ?? 0;

    /// <inheritdoc />
    public long OversizeDatagrams => (_inner as IReceiveDropCounts)?.OversizeDatagrams ?? 0;

    public async ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        bool send;
        bool duplicate;
        List<(byte[] Buffer, int Length, int Peer)>? release = null;
        lock (_sync)
        {
            if (Partitioned || _random.NextDouble() < DropRate)
            {
                Dropped++;
                return;
            }

            duplicate = _random.NextDouble() < DuplicateRate;
            if (duplicate)
            {
                Duplicated++;
            }

            send = true;
            if (_random.NextDouble() < ReorderRate && _held.Count < 8)
            {
                var copy = ArrayPool<byte>.Shared.Rent(datagram.Length);
                datagram.Span.CopyTo(copy);
                _held.Add((copy, datagram.Length, peerIndex));
                Reordered++;
                send = false;
            }
            else if (_held.Count > 0 && _random.NextDouble() < 0.5)
            {
                release = [.. _held];
                _held.Clear();
            }
        }

        if (send)
        {
            await _inner.SendAsync(datagram, peerIndex, cancellationToken).ConfigureAwait(false);
            if (duplicate)
            {
                await _inner.SendAsync(datagram, peerIndex, cancellationToken).ConfigureAwait(false);
            }
        }

        if (release is not null)
        {
            foreach (var (buffer, length, peer) in release)
            {
                await _inner.SendAsync(buffer.AsMemory(0, length), peer, cancellationToken).ConfigureAwait(false);
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// The engine's batched send: each datagram meets the same faults, in the same order of random draws, as through
    /// <see cref="SendAsync"/>; what survives goes to the inner channel as one batch where it takes batches (so the
    /// batched UDP path is tested under loss, duplication and reordering), then any released held-back datagrams.
    /// </summary>
    public void SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, int peerIndex)
    {
        var forward = ArrayPool<ReadOnlyMemory<byte>>.Shared.Rent((datagrams.Length * 2) + 1);
        int count = 0;
        List<(byte[] Buffer, int Length, int Peer)>? release = null;
        lock (_sync)
        {
            foreach (var datagram in datagrams)
            {
                if (Partitioned || _random.NextDouble() < DropRate)
                {
                    Dropped++;
                    continue;
                }

                bool duplicate = _random.NextDouble() < DuplicateRate;
                if (duplicate)
                {
                    Duplicated++;
                }

                if (_random.NextDouble() < ReorderRate && _held.Count < 8)
                {
                    var copy = ArrayPool<byte>.Shared.Rent(datagram.Length);
                    datagram.Span.CopyTo(copy);
                    _held.Add((copy, datagram.Length, peerIndex));
                    Reordered++;
                    continue;
                }

                if (_held.Count > 0 && _random.NextDouble() < 0.5)
                {
                    (release ??= []).AddRange(_held);
                    _held.Clear();
                }

                forward[count++] = datagram;
                if (duplicate)
                {
                    forward[count++] = datagram;
                }
            }
        }

        try
        {
            if (_inner is IDatagramBatchSender batch)
            {
                batch.SendBatch(forward.AsSpan(0, count), peerIndex);
            }
            else
            {
                for (int i = 0; i < count; i++)
                {
                    Wait(_inner.SendAsync(forward[i], peerIndex));
                }
            }

            if (release is not null)
            {
                foreach (var (buffer, length, peer) in release)
                {
                    Wait(_inner.SendAsync(buffer.AsMemory(0, length), peer));
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        finally
        {
            forward.AsSpan(0, count).Clear();
            ArrayPool<ReadOnlyMemory<byte>>.Shared.Return(forward);
        }

        static void Wait(ValueTask pending)
        {
            if (!pending.IsCompletedSuccessfully)
            {
                pending.AsTask().GetAwaiter().GetResult();
            }
        }
    }

    /// <inheritdoc />
    public string TransportPath => (_inner as IDatagramBatchSender)?.TransportPath ?? "channel";

    /// <inheritdoc />
    public int PathChanges => (_inner as IDatagramBatchSender)?.PathChanges ?? 0;

    /// <inheritdoc />
    public long SendCalls => (_inner as IDatagramBatchSender)?.SendCalls ?? 0;

    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => _inner.ReceiveAsync(buffer, cancellationToken);

    public void Dispose()
    {
        lock (_sync)
        {
            foreach (var (buffer, _, _) in _held)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            _held.Clear();
        }

        _inner.Dispose();
    }
}
