using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;

namespace ClusterSync.Protocol;

/// <summary>
/// Encodes and decodes connection records inside a Data message body. All integers big-endian.
/// A record: op, flags, protocol, state, zone, ports, addresses, version; then (new/update only)
/// status, class, owner, timeout, created, updated, and optionally the reply tuple, counters and the extension block
/// (format version 1: the conntrack mark and the master of a related connection; present only when one is set).
/// </summary>
public static class RecordCodec
{
    private const byte FlagIPv6 = 1;
    private const byte FlagReply = 2;
    private const byte FlagCounters = 4;
    private const byte FlagExtension = 8;
    private const byte KnownFlags = FlagIPv6 | FlagReply | FlagCounters | FlagExtension;

    /// <summary>The version of the extension block this codec writes and the only one it reads.</summary>
    public const byte ExtensionVersion = 1;
    private const byte ExtMark = 1;
    private const byte ExtMaster = 2;
    private const byte KnownExtFields = ExtMark | ExtMaster;

    /// <summary>The largest extension block: length, version, fields, mark (4), an IPv6 master (40).</summary>
    public const int MaxExtensionSize = 3 + 4 + 8 + 32;

    /// <summary>The largest record (IPv6, NAT, counters, mark and an IPv6 master).</summary>
    public const int MaxRecordSize = 18 + 24 + 8 + 24 + 36 + 32 + MaxExtensionSize;

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

        return size + ExtensionSize(r.Entry);
    }

    /// <summary>Bytes of the extension block an entry needs: 0 when it has neither a mark nor a master.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ExtensionSize(in ConnectionEntry e)
    {
        byte family = e.Master.Family;
        if (e.Mark == 0 && family == 0)
        {
            return 0;
        }

        return 3 + (e.Mark != 0 ? 4 : 0) + (family == 0 ? 0 : family == 6 ? 40 : 16);
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
        int ext = destroy ? 0 : ExtensionSize(r.Entry);
        int addr = v6 ? 16 : 4;
        int need = 10 + (2 * addr) + 8 + (destroy ? 0 : 24) + (hasReply ? (2 * addr) + 4 : 0) + (counters ? 32 : 0) + ext;
        if (dst.Length < need)
        {
            return 0;
        }

        dst[0] = (byte)r.Kind;
        dst[1] = (byte)((v6 ? FlagIPv6 : 0) | (hasReply ? FlagReply : 0) | (counters ? FlagCounters : 0) | (ext != 0 ? FlagExtension : 0));
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

        if (ext != 0)
        {
            o += WriteExtension(dst[o..], e, ext);
        }

        return o;
    }

    // length(1): bytes after it; version(1); fields(1): bit 0 mark, bit 1 master; mark(4); master: family(1) protocol(1)
    // zone(2) source port(2) destination port(2) source, destination address (4+4 or 16+16).
    private static int WriteExtension(Span<byte> dst, in ConnectionEntry e, int size)
    {
        dst[0] = (byte)(size - 1);
        dst[1] = ExtensionVersion;
        bool master = e.Master.Family != 0;
        dst[2] = (byte)((e.Mark != 0 ? ExtMark : 0) | (master ? ExtMaster : 0));
        int o = 3;
        if (e.Mark != 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(dst[o..], e.Mark);
            o += 4;
        }

        if (master)
        {
            ref readonly var m = ref e.Master;
            bool v6 = m.IsIPv6;
            dst[o] = m.Family;
            dst[o + 1] = m.Protocol;
            BinaryPrimitives.WriteUInt16BigEndian(dst[(o + 2)..], m.Zone);
            BinaryPrimitives.WriteUInt16BigEndian(dst[(o + 4)..], m.SourcePort);
            BinaryPrimitives.WriteUInt16BigEndian(dst[(o + 6)..], m.DestinationPort);
            o += 8;
            o += WriteAddress(dst[o..], m.SourceHigh, m.SourceLow, v6);
            o += WriteAddress(dst[o..], m.DestinationHigh, m.DestinationLow, v6);
        }

        return o;
    }

    /// <summary>
    /// Reads the extension block at the front of <paramref name="src"/> into <paramref name="e"/>; returns its size, or 0
    /// when it is malformed: a length that runs past the record or does not match its fields, another version, unknown
    /// field bits, no field, a zero mark, a master of an unknown family or equal to the entry's own key.
    /// </summary>
    private static int ReadExtension(ReadOnlySpan<byte> src, in ConnectionKey key, ref ConnectionEntry e)
    {
        if (src.Length < 3)
        {
            return 0;
        }

        int size = src[0] + 1;
        byte fields = src[2];
        if (size > src.Length || src[1] != ExtensionVersion || fields == 0 || (fields & ~KnownExtFields) != 0)
        {
            return 0;
        }

        int o = 3;
        if ((fields & ExtMark) != 0)
        {
            if (size < o + 4)
            {
                return 0;
            }

            e.Mark = BinaryPrimitives.ReadUInt32BigEndian(src[o..]);
            o += 4;
            if (e.Mark == 0)
            {
                return 0;
            }
        }

        if ((fields & ExtMaster) != 0)
        {
            if (size < o + 1)
            {
                return 0;
            }

            byte family = src[o];
            int addr = family switch { 4 => 4, 6 => 16, _ => 0 };
            if (addr == 0 || size < o + 8 + (2 * addr))
            {
                return 0;
            }

            byte protocol = src[o + 1];
            ushort zone = BinaryPrimitives.ReadUInt16BigEndian(src[(o + 2)..]);
            ushort sport = BinaryPrimitives.ReadUInt16BigEndian(src[(o + 4)..]);
            ushort dport = BinaryPrimitives.ReadUInt16BigEndian(src[(o + 6)..]);
            o += 8;
            bool v6 = family == 6;
            ReadAddress(src[o..], v6, out ulong sh, out ulong sl);
            o += addr;
            ReadAddress(src[o..], v6, out ulong dh, out ulong dl);
            o += addr;
            e.Master = v6
                ? ConnectionKey.IPv6(sh, sl, dh, dl, sport, dport, protocol, zone)
                : ConnectionKey.IPv4((uint)sl, (uint)dl, sport, dport, protocol, zone);
            if (e.Master.Equals(key))
            {
                return 0;
            }
        }

        return o == size ? size : 0;
    }

    /// <summary>
    /// Writes one address of a record (IPv4: 4 bytes, the low 32 bits of <paramref name="lo"/>; IPv6: 16 bytes),
    /// big-endian; returns its length. Shared by every record type of a Data body (connection and template records).
    /// </summary>
    internal static int WriteAddress(Span<byte> dst, ulong hi, ulong lo, bool v6)
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

    /// <summary>Reads one address written by <see cref="WriteAddress"/> (an IPv4 one as its IPv4-mapped form).</summary>
    internal static void ReadAddress(ReadOnlySpan<byte> src, bool v6, out ulong hi, out ulong lo)
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
    public static int TryRead(ReadOnlySpan<byte> src, out ConnectionEvent r) => TryRead(src, out r, out _);

    /// <summary>
    /// As <see cref="TryRead(ReadOnlySpan{byte}, out ConnectionEvent)"/>; <paramref name="badExtension"/> tells a record
    /// refused only for its extension block (the receiver counts that apart: <c>drops_bad_extension</c>).
    /// </summary>
    public static int TryRead(ReadOnlySpan<byte> src, out ConnectionEvent r, out bool badExtension)
    {
        r = default;
        badExtension = false;
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
        bool ext = (flags & FlagExtension) != 0;
        if (destroy && (hasReply || counters || ext || src[3] != 0))
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

        if (ext)
        {
            int used = ReadExtension(src[o..], r.Key, ref r.Entry);
            if (used == 0)
            {
                badExtension = true;
                r = default;
                return 0;
            }

            o += used;
        }

        return o;
    }
}
