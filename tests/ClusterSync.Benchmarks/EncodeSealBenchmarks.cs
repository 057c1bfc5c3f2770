namespace ClusterSync.Benchmarks;

/// <summary>
/// The send path of one Data datagram, as SyncEngine.SendBatch/CloseDatagram do it: a 24-byte header, a record
/// count, then <see cref="Records"/> IPv4 update records with a NAT reply tuple (62 bytes each, 1118-byte body)
/// in a 1400-byte datagram, then AES-256-GCM sealing in place. Results are per update (OperationsPerInvoke).
/// Not measured: the resend-buffer rent/commit, the pending-batch walk and the socket send.
/// </summary>
[MemoryDiagnoser]
public class EncodeSealBenchmarks
{
    public const int Records = 18;
    private const int Mtu = 1400;
    private const ushort Sender = 1;
    private const ulong Epoch = 1;

    private ConnectionEvent[] _events = null!;
    private byte[] _datagram = null!;
    private PacketProtection _sealer = null!;
    private ulong _sequence;
    private int _bodyLength;

    [GlobalSetup]
    public void Setup()
    {
        _events = Tuples.NatUpdates(Tuples.DistinctKeys(Records, seed: 18), firstVersion: 1UL << 40);

        _datagram = new byte[Mtu];
        _sealer = PacketProtection.Create(ClusterKey.Generate(), Sender, Epoch);
        _bodyLength = EncodeBody();
    }

    [GlobalCleanup]
    public void Cleanup() => _sealer.Dispose();

    /// <summary>Header + 18 records, no encryption.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Records)]
    public int Encode() => PacketHeader.Size + EncodeBody();

    /// <summary>Header + 18 records + AES-256-GCM seal (the real send path).</summary>
    [Benchmark(OperationsPerInvoke = Records)]
    public int EncodeSeal() => _sealer.Seal(_datagram, EncodeBody());

    /// <summary>AES-256-GCM seal of the 1118-byte body alone (fresh sequence, so a fresh nonce, each time).</summary>
    [Benchmark(OperationsPerInvoke = Records)]
    public int SealOnly()
    {
        new PacketHeader(MessageType.Data, Sender, HeaderFlags.Sealed, Epoch, ++_sequence).Write(_datagram);
        return _sealer.Seal(_datagram, _bodyLength);
    }

    private int EncodeBody()
    {
        var span = _datagram.AsSpan();
        new PacketHeader(MessageType.Data, Sender, HeaderFlags.Sealed, Epoch, ++_sequence).Write(span);
        return Tuples.WriteBody(span.Slice(PacketHeader.Size, Mtu - PacketHeader.Size - PacketProtection.TagSize), _events);
    }
}
