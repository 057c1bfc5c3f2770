namespace ClusterSync.Benchmarks;

/// <summary>
/// The receive path of one Data datagram of <see cref="Records"/> IPv4 update records (62 bytes each, NAT reply
/// tuple) into a <see cref="ConnectionTable"/> holding 1,000,000 connections. Results are per update record.
/// <para>
/// What is measured, per datagram: copy of the 1158-byte sealed datagram into a scratch buffer (the receive
/// buffer), <see cref="PacketHeader.TryRead"/>, <see cref="PacketProtection.Open"/> (AES-256-GCM decrypt +
/// tag check in place), then for each record <see cref="RecordCodec.TryRead"/> and the body of
/// SyncEngine.ApplyLocked reproduced here (it is private): GetOrAdd, version compare, VersionClock.Observe,
/// copy of the entry, wire-mask of the status, ClearCounters. Not measured: the socket receive, the peer lookup,
/// the peer lock and the replay/receive-window checks of HandleDatagram, the table lock, the counters and the
/// AppliedObserver callback.
/// </para>
/// <para>
/// Versions really increase, so every apply writes: <see cref="Datagrams"/> sealed datagrams (distinct keys,
/// chosen at random over the table) are built in GlobalSetup and used in rotation; each record carries
/// version 1 + (its index over all datagrams) + 1, and on every full rotation an offset of Datagrams × 18 is
/// added to the decoded version before the apply (one add per record, which is the only thing not in the real
/// path). Cleanup throws if a single apply was found stale. With 64 datagrams the 1,152 touched entries stay
/// in cache (warm case); with 4096 datagrams 73,728 entries (~9 MB of slots plus their buckets) are touched,
/// closer to updates spread over a large table.
/// </para>
/// </summary>
[MemoryDiagnoser]
public class OpenDecodeApplyBenchmarks
{
    public const int Records = 18;
    private const int TableEntries = 1_000_000;
    private const int Mtu = 1400;
    private const ushort Sender = 2;
    private const ulong Epoch = 7;

    [Params(64, 4096)]
    public int Datagrams { get; set; }

    private SyncEngine _engine = null!;
    private PacketProtection _opener = null!;
    private byte[][] _sealed = null!;     // header + ciphertext + tag, never modified
    private byte[][] _plainBodies = null!; // the decrypted bodies (count + records), for DecodeApply
    private byte[] _scratch = null!;
    private int _next;
    private int _round = 1;
    private int[] _patchedRound = null!;
    private const int VersionOffset = 18; // op, flags, protocol, state, zone, 2 ports, 2 IPv4 addresses
    private long _applied;
    private long _stale;
    private const int BatchDatagrams = 16;
    private readonly byte[][] _batch = new byte[BatchDatagrams][];

    [GlobalSetup]
    public void Setup()
    {
        var keys = Tuples.DistinctKeys(TableEntries, seed: 1_000_000);
        _engine = DiscardChannel.Engine((byte)(Sender + 1), (byte)Sender, TableEntries + 1024);
        // Fill the member's table through the real apply path, with version 1 of every connection.
        var fill = new byte[Mtu];
        var first = new ConnectionEvent[Records];
        for (int i = 0; i < keys.Length; i += Records)
        {
            var batch = first.AsSpan(0, Math.Min(Records, keys.Length - i));
            for (int j = 0; j < batch.Length; j++)
            {
                batch[j] = Tuples.Update(keys[i + j], version: 1);
            }

            _engine.HandleData(fill.AsSpan(0, Tuples.WriteBody(fill, batch)));
        }

        var updated = Tuples.Shuffled(keys, seed: 42);
        var clusterKey = ClusterKey.Generate();
        using var sealer = PacketProtection.Create(clusterKey, Sender, Epoch);
        _opener = PacketProtection.Create(clusterKey, Sender, Epoch);
        _sealed = new byte[Datagrams][];
        _plainBodies = new byte[Datagrams][];
        _patchedRound = new int[Datagrams];
        _scratch = new byte[Mtu];
        for (int d = 0; d < Datagrams; d++)
        {
            var datagram = new byte[Mtu];
            new PacketHeader(MessageType.Data, Sender, HeaderFlags.Sealed, Epoch, (ulong)d + 1).Write(datagram);
            var body = datagram.AsSpan(PacketHeader.Size, Mtu - PacketHeader.Size - PacketProtection.TagSize);
            int length = Tuples.WriteBody(body, Tuples.NatUpdates(updated.AsSpan(d * Records, Records), firstVersion: 2 + (ulong)(d * Records)));
            _plainBodies[d] = body[..length].ToArray();
            int sealedLength = sealer.Seal(datagram, length);
            _sealed[d] = datagram[..sealedLength];
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _opener.Dispose();
        _engine.Dispose();
        _applied = _engine.Counters.UpdatesApplied;
        if (_stale != 0)
        {
            throw new InvalidOperationException($"{_stale} of {_stale + _applied} applies were stale: the benchmark did not measure real writes");
        }
    }

    /// <summary>Copy + header parse + AES-256-GCM open only.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Records)]
    public int Open()
    {
        var datagram = NextDatagram();
        return OpenInPlace(datagram);
    }

    /// <summary>Decode + apply only, from the already decrypted body.</summary>
    [Benchmark(OperationsPerInvoke = Records)]
    public int DecodeApply()
    {
        int d = _next;
        Advance();
        return DecodeAndApply(d);
    }

    /// <summary>
    /// Decode + apply of <see cref="BatchDatagrams"/> consecutive datagrams staged together and applied under one table
    /// lock with one prefetch pipeline, as the receiver does for the datagrams one recvmmsg batch brought.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Records * BatchDatagrams)]
    public int DecodeApplyBatch()
    {
        int first = _next;
        for (int i = 0; i < BatchDatagrams; i++)
        {
            PatchVersions(_next);
            _batch[i] = _plainBodies[_next];
            Advance();
        }

        long staleBefore = _engine.Counters.UpdatesStale;
        if (_engine.HandleDataBatch(_batch) != DropReason.None)
        {
            throw new InvalidOperationException("malformed body");
        }

        _stale += _engine.Counters.UpdatesStale - staleBefore;
        return first;
    }

    /// <summary>The whole receive path: copy, header, open, decode, apply.</summary>
    [Benchmark(OperationsPerInvoke = Records)]
    public int OpenDecodeApply()
    {
        int d = _next;
        var datagram = NextDatagram();
        OpenInPlace(datagram);
        return DecodeAndApply(d);
    }

    /// <summary>On a new rotation, raises the versions of datagram <paramref name="d"/>'s records so every apply writes.</summary>
    private void PatchVersions(int d)
    {
        var body = _plainBodies[d];
        if (_patchedRound[d] != _round)
        {
            _patchedRound[d] = _round;
            for (int i = 0; i < Records; i++)
            {
                var version = body.AsSpan(2 + (i * Tuples.IPv4NatRecordSize) + VersionOffset, 8);
                BinaryPrimitives.WriteUInt64BigEndian(version, BinaryPrimitives.ReadUInt64BigEndian(version) + (ulong)(Datagrams * Records));
            }
        }
    }

    private Span<byte> NextDatagram()
    {
        var source = _sealed[_next];
        Advance();
        var datagram = _scratch.AsSpan(0, source.Length);
        source.CopyTo(datagram);
        return datagram;
    }

    private void Advance()
    {
        if (++_next == Datagrams)
        {
            _next = 0;
            _round++;
        }
    }

    private int OpenInPlace(Span<byte> datagram)
    {
        if (PacketHeader.TryRead(datagram, out var header) != DropReason.None || header.Type != MessageType.Data)
        {
            throw new InvalidOperationException("bad header");
        }

        int bodyLength = _opener.Open(datagram);
        if (bodyLength < 0)
        {
            throw new InvalidOperationException("authentication failed");
        }

        return bodyLength;
    }

    /// <summary>
    /// The engine's real decode + apply (<c>SyncEngine.HandleData</c>: prefetch, table lock, version check, apply).
    /// Each full rotation first raises the version of every record in the plaintext bodies (18 eight-byte writes per
    /// datagram, the one step the real path does not take) so that every apply is a real write.
    /// </summary>
    private int DecodeAndApply(int d)
    {
        var body = _plainBodies[d];
        PatchVersions(d);

        long staleBefore = _engine.Counters.UpdatesStale;
        if (_engine.HandleData(body) != DropReason.None)
        {
            throw new InvalidOperationException("malformed body");
        }

        _stale += _engine.Counters.UpdatesStale - staleBefore;
        return Records;
    }
}
