namespace ClusterSync.Benchmarks;

/// <summary>
/// Deterministic, realistic-looking IPv4 connections: clients spread over 10.0.0.0/8 with random ephemeral ports,
/// servers drawn from a pool of 4096 random public addresses on common services, and a source-NAT reply tuple
/// (public address + translated port), so every update record carries the reply tuple (62 bytes on the wire).
/// </summary>
internal static class Tuples
{
    /// <summary>A fixed "now" so runs are reproducible (2025-11-26T00:00:00Z).</summary>
    public const long NowMs = 1_764_115_200_000;

    /// <summary>Bytes of one IPv4 update record with a NAT reply tuple and no counters.</summary>
    public const int IPv4NatRecordSize = 62;

    private const ulong V4MappedLow = 0x0000_FFFF_0000_0000UL;

    private static readonly (byte Protocol, ushort Port)[] s_services =
    [
        (6, 443), (6, 443), (6, 443), (6, 80), (17, 53), (17, 443), (6, 22), (6, 3306), (6, 5432), (17, 123),
        (6, 8080), (6, 25), (17, 5060), (6, 993),
    ];

    /// <summary><paramref name="count"/> distinct keys; the same seed gives the same keys in the same order.</summary>
    public static ConnectionKey[] DistinctKeys(int count, int seed)
    {
        var rng = new Random(seed);
        var servers = new uint[4096];
        for (int i = 0; i < servers.Length; i++)
        {
            servers[i] = (uint)rng.NextInt64(0x0B00_0000, 0xDF00_0000);
        }

        var seen = new HashSet<ConnectionKey>(count);
        var keys = new ConnectionKey[count];
        int n = 0;
        while (n < count)
        {
            var (protocol, port) = s_services[rng.Next(s_services.Length)];
            uint client = 0x0A00_0000u | (uint)rng.Next(1 << 24);
            uint server = servers[rng.Next(servers.Length)];
            ushort sport = (ushort)rng.Next(1024, 65536);
            var key = ConnectionKey.IPv4(client, server, sport, port, protocol);
            if (seen.Add(key))
            {
                keys[n++] = key;
            }
        }

        return keys;
    }

    /// <summary>A shuffled copy (table slots are filled in insertion order, so probing in that order would be sequential).</summary>
    public static ConnectionKey[] Shuffled(ConnectionKey[] keys, int seed)
    {
        var copy = (ConnectionKey[])keys.Clone();
        new Random(seed).Shuffle(copy);
        return copy;
    }

    /// <summary>A full entry for <paramref name="key"/>: established, source-NATed, owned by member 1.</summary>
    public static ConnectionEntry Entry(in ConnectionKey key, ulong version)
    {
        uint h = (uint)key.Hash64(0x4E41_5400);
        uint publicAddress = 0xCB00_7100u | (h & 0x0F); // 203.0.113.0/28
        ushort natPort = (ushort)(1024 + ((h >> 8) % 64000));
        bool tcp = key.Protocol == 6;
        var e = new ConnectionEntry
        {
            Reply = new ReplyTuple(0, key.DestinationLow, 0, V4MappedLow | publicAddress, key.DestinationPort, natPort),
            Version = version,
            CreatedMs = NowMs - 60_000 - (h % 600_000),
            UpdatedMs = NowMs,
            TimeoutSeconds = tcp ? 432_000u : 180u,
            Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed | ConnectionStatus.SourceNat,
            State = tcp ? ProtocolState.TcpEstablished : key.Protocol == 17 ? ProtocolState.UdpReplied : ProtocolState.OtherActive,
            ServiceClass = 1,
            Owner = 1,
        };
        return e;
    }

    /// <summary>An update event for <paramref name="key"/> carrying <paramref name="version"/>.</summary>
    public static ConnectionEvent Update(in ConnectionKey key, ulong version)
        => new() { Kind = ConnectionEventKind.Update, Key = key, Entry = Entry(key, version) };

    /// <summary>
    /// Update events for <paramref name="keys"/>, the i-th carrying version <paramref name="firstVersion"/> + i; throws
    /// unless each encodes as an <see cref="IPv4NatRecordSize"/>-byte record (what the datagram benchmarks assume).
    /// </summary>
    public static ConnectionEvent[] NatUpdates(ReadOnlySpan<ConnectionKey> keys, ulong firstVersion)
    {
        var events = new ConnectionEvent[keys.Length];
        for (int i = 0; i < events.Length; i++)
        {
            events[i] = Update(keys[i], firstVersion + (ulong)i);
            if (RecordCodec.Measure(events[i]) != IPv4NatRecordSize)
            {
                throw new InvalidOperationException($"record {i} is {RecordCodec.Measure(events[i])} bytes, expected {IPv4NatRecordSize}");
            }
        }

        return events;
    }

    /// <summary>
    /// Writes a Data body as the engine's sender does after the header: the record count, then every record of
    /// <paramref name="events"/>; returns its length. Throws when a record does not fit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int WriteBody(Span<byte> body, ReadOnlySpan<ConnectionEvent> events)
    {
        int length = 2; // record count
        for (int i = 0; i < events.Length; i++)
        {
            int n = RecordCodec.Write(body[length..], events[i]);
            if (n == 0)
            {
                throw new InvalidOperationException("record does not fit");
            }

            length += n;
        }

        BinaryPrimitives.WriteUInt16BigEndian(body, (ushort)events.Length);
        return length;
    }
}
