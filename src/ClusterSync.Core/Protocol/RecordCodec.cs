using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;

namespace ClusterSync.Protocol;

/// <summary>
/// Encodes and decodes connection records inside a Data message body. All integers big-endian.
/// A record: op, flags, protocol, state, zone, ports, addresses, version; then (new/update only)
/// status, class, owner, timeout, created, updated, and optionally the reply tuple and counters.
/// </summary>
public static class RecordCodec
{
    private const byte FlagIPv6 = 1;
    private const byte FlagReply = 2;
    private const byte FlagCounters = 4;
    private const byte KnownFlags = FlagIPv6 | FlagReply | FlagCounters;

    /// <summary>The largest record (IPv6, NAT, counters).</summary>
    public const int MaxRecordSize = 18 + 24 + 8 + 24 + 36 + 32;

    private static readonly bool[] s_validState = BuildStates();

    private static bool[] BuildStates()
    {
        var v = new bool[256];
        foreach (var s in Enum.GetValues<ProtocolState>())
        {
            v[(byte)s] = true;
        }

        return v;
    }

    public static int Measure(in ConnectionEvent r)
    {
        int addr = r.Key.IsIPv6 ? 16 : 4;
        int size = 10 + (2 * addr) + 8;
        if (r.Kind == ConnectionEventKind.Destroy)
        {
            return size;
        }

        size += 24;
        if (!r.Entry.Reply.Equals(r.Key.InverseTuple))
        {
            size += (2 * addr) + 4;
        }

        if (r.HasCounters)
        {
            size += 32;
        }

        return size;
    }

    /// <summary>Writes <paramref name="r"/>; returns bytes written, or 0 when it does not fit.</summary>
    // Hot in bulk (a full sync decodes a million records at once, on a cold process): compiled optimized from the start.
    public static int Write(Span<byte> dst, in ConnectionEvent r)
    {
        ref readonly var k = ref r.Key;
        bool v6 = k.IsIPv6;
        bool destroy = r.Kind == ConnectionEventKind.Destroy;
        var reply = r.Entry.Reply;
        bool hasReply = !destroy && !reply.Equals(k.InverseTuple);
        bool counters = !destroy && r.HasCounters;
        int addr = v6 ? 16 : 4;
        int need = 10 + (2 * addr) + 8 + (destroy ? 0 : 24) + (hasReply ? (2 * addr) + 4 : 0) + (counters ? 32 : 0);
        if (dst.Length < need)
        {
            return 0;
        }

        dst[0] = (byte)r.Kind;
        dst[1] = (byte)((v6 ? FlagIPv6 : 0) | (hasReply ? FlagReply : 0) | (counters ? FlagCounters : 0));
        dst[2] = k.Protocol;
        dst[3] = destroy ? (byte)0 : (byte)r.Entry.State;
        BinaryPrimitives.WriteUInt16BigEndian(dst[4..], k.Zone);
        BinaryPrimitives.WriteUInt16BigEndian(dst[6..], k.SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(dst[8..], k.DestinationPort);
        int o = 10;
        o += WriteAddress(dst[o..], k.SourceHigh, k.SourceLow, v6);
        o += WriteAddress(dst[o..], k.DestinationHigh, k.DestinationLow, v6);
        BinaryPrimitives.WriteUInt64BigEndian(dst[o..], r.Entry.Version);
        o += 8;
        if (destroy)
        {
            return o;
        }

        ref readonly var e = ref r.Entry;
        BinaryPrimitives.WriteUInt16BigEndian(dst[o..], (ushort)(e.Status & ConnectionStatus.WireMask));
        dst[o + 2] = e.ServiceClass;
        dst[o + 3] = e.Owner;
        BinaryPrimitives.WriteUInt32BigEndian(dst[(o + 4)..], e.TimeoutSeconds);
        BinaryPrimitives.WriteInt64BigEndian(dst[(o + 8)..], e.CreatedMs);
        BinaryPrimitives.WriteInt64BigEndian(dst[(o + 16)..], Math.Max(e.UpdatedMs, e.CreatedMs)); // never what TryRead refuses
        o += 24;
        if (hasReply)
        {
            o += WriteAddress(dst[o..], reply.SourceHigh, reply.SourceLow, v6);
            o += WriteAddress(dst[o..], reply.DestinationHigh, reply.DestinationLow, v6);
            BinaryPrimitives.WriteUInt16BigEndian(dst[o..], reply.SourcePort);
            BinaryPrimitives.WriteUInt16BigEndian(dst[(o + 2)..], reply.DestinationPort);
            o += 4;
        }

        if (counters)
        {
            var c = r.Counters;
            BinaryPrimitives.WriteUInt64BigEndian(dst[o..], c.OriginalPackets);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 8)..], c.OriginalBytes);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 16)..], c.ReplyPackets);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 24)..], c.ReplyBytes);
            o += 32;
        }

        return o;
    }

    private static int WriteAddress(Span<byte> dst, ulong hi, ulong lo, bool v6)
    {
        if (!v6)
        {
            BinaryPrimitives.WriteUInt32BigEndian(dst, (uint)lo);
            return 4;
        }

        BinaryPrimitives.WriteUInt64BigEndian(dst, hi);
        BinaryPrimitives.WriteUInt64BigEndian(dst[8..], lo);
        return 16;
    }

    private static void ReadAddress(ReadOnlySpan<byte> src, bool v6, out ulong hi, out ulong lo)
    {
        if (!v6)
        {
            hi = 0;
            lo = 0x0000_FFFF_0000_0000UL | BinaryPrimitives.ReadUInt32BigEndian(src);
            return;
        }

        hi = BinaryPrimitives.ReadUInt64BigEndian(src);
        lo = BinaryPrimitives.ReadUInt64BigEndian(src[8..]);
    }

    /// <summary>
    /// Decodes records from the front of <paramref name="records"/> into <paramref name="staging"/> until it is full;
    /// returns how many were read. Stops at the first invalid record, leaving <paramref name="records"/> at it.
    /// </summary>
    public static int ReadMany(ref ReadOnlySpan<byte> records, Span<ConnectionEvent> staging)
    {
        for (int n = 0; n < staging.Length; n++)
        {
            int used = TryRead(records, out staging[n]);
            if (used == 0)
            {
                return n;
            }

            records = records[used..];
        }

        return staging.Length;
    }

    /// <summary>Reads one record; returns bytes consumed, or 0 when the bytes do not form a valid record.</summary>
    // Hot in bulk (a full sync decodes a million records at once, on a cold process): compiled optimized from the start.
    public static int TryRead(ReadOnlySpan<byte> src, out ConnectionEvent r)
    {
        r = default;
        if (src.Length < 18)
        {
            return 0;
        }

        var kind = (ConnectionEventKind)src[0];
        byte flags = src[1];
        if (kind is < ConnectionEventKind.New or > ConnectionEventKind.Destroy || (flags & ~KnownFlags) != 0)
        {
            return 0;
        }

        bool destroy = kind == ConnectionEventKind.Destroy;
        bool v6 = (flags & FlagIPv6) != 0;
        bool hasReply = (flags & FlagReply) != 0;
        bool counters = (flags & FlagCounters) != 0;
        if (destroy && (hasReply || counters || src[3] != 0))
        {
            return 0;
        }

        if (!s_validState[src[3]])
        {
            return 0;
        }

        int addr = v6 ? 16 : 4;
        int need = 10 + (2 * addr) + 8 + (destroy ? 0 : 24) + (hasReply ? (2 * addr) + 4 : 0) + (counters ? 32 : 0);
        if (src.Length < need)
        {
            return 0;
        }

        byte protocol = src[2];
        ushort zone = BinaryPrimitives.ReadUInt16BigEndian(src[4..]);
        ushort sport = BinaryPrimitives.ReadUInt16BigEndian(src[6..]);
        ushort dport = BinaryPrimitives.ReadUInt16BigEndian(src[8..]);
        int o = 10;
        ReadAddress(src[o..], v6, out ulong sh, out ulong sl);
        o += addr;
        ReadAddress(src[o..], v6, out ulong dh, out ulong dl);
        o += addr;
        r.Kind = kind;
        r.Key = v6
            ? ConnectionKey.IPv6(sh, sl, dh, dl, sport, dport, protocol, zone)
            : ConnectionKey.IPv4((uint)sl, (uint)dl, sport, dport, protocol, zone);
        r.Entry.Version = BinaryPrimitives.ReadUInt64BigEndian(src[o..]);
        o += 8;
        if (r.Entry.Version == 0)
        {
            return 0;
        }

        if (destroy)
        {
            return o;
        }

        r.Entry.State = (ProtocolState)src[3];
        ushort status = BinaryPrimitives.ReadUInt16BigEndian(src[o..]);
        if ((status & ~(ushort)ConnectionStatus.WireMask) != 0)
        {
            return 0;
        }

        r.Entry.Status = (ConnectionStatus)status;
        r.Entry.ServiceClass = src[o + 2];
        r.Entry.Owner = src[o + 3];
        r.Entry.TimeoutSeconds = BinaryPrimitives.ReadUInt32BigEndian(src[(o + 4)..]);
        r.Entry.CreatedMs = BinaryPrimitives.ReadInt64BigEndian(src[(o + 8)..]);
        r.Entry.UpdatedMs = BinaryPrimitives.ReadInt64BigEndian(src[(o + 16)..]);
        o += 24;
        if (r.Entry.Owner == 0 || r.Entry.CreatedMs < 0 || r.Entry.UpdatedMs < r.Entry.CreatedMs)
        {
            return 0;
        }

        if (hasReply)
        {
            ReadAddress(src[o..], v6, out ulong rsh, out ulong rsl);
            o += addr;
            ReadAddress(src[o..], v6, out ulong rdh, out ulong rdl);
            o += addr;
            r.Entry.Reply = new ReplyTuple(rsh, rsl, rdh, rdl,
                BinaryPrimitives.ReadUInt16BigEndian(src[o..]), BinaryPrimitives.ReadUInt16BigEndian(src[(o + 2)..]));
            o += 4;
        }
        else
        {
            r.Entry.Reply = r.Key.InverseTuple;
        }

        if (counters)
        {
            r.Counters = new ConnectionCounters(
                BinaryPrimitives.ReadUInt64BigEndian(src[o..]), BinaryPrimitives.ReadUInt64BigEndian(src[(o + 8)..]),
                BinaryPrimitives.ReadUInt64BigEndian(src[(o + 16)..]), BinaryPrimitives.ReadUInt64BigEndian(src[(o + 24)..]));
            r.HasCounters = true;
            o += 32;
        }

        return o;
    }
}
