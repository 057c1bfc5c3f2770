using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Templates;

namespace ClusterSync.Protocol;

/// <summary>
/// The template record (op 4) of a Data body (Protocol/README.md, "Template records"). It shares the connection
/// record's first 18/42 bytes (op, flags, protocol, state, zone, ports, addresses, version) with the source port 0 and
/// the state 0, then: owner(1) class(1) count(4) lifetime(4) created(8) updated(8). All integers big-endian.
/// </summary>
public static class TemplateCodec
{
    /// <summary>The record's op byte (connection records use 1-3).</summary>
    public const byte Op = 4;

    private const byte FlagIPv6 = 1;

    /// <summary>The longest lifetime a record may carry, in seconds (one day, as the configuration allows).</summary>
    public const uint MaxLifetimeSeconds = 86400;

    /// <summary>An IPv4 template record (52 bytes).</summary>
    public const int SizeIPv4 = 10 + 8 + 8 + 26;

    /// <summary>An IPv6 template record (76 bytes).</summary>
    public const int SizeIPv6 = 10 + 32 + 8 + 26;

    public static int Measure(in ConnectionTemplate t) => t.Key.IsIPv6 ? SizeIPv6 : SizeIPv4;

    /// <summary>Writes <paramref name="t"/>; returns bytes written, or 0 when it does not fit.</summary>
    public static int Write(Span<byte> dst, in ConnectionTemplate t)
    {
        var k = t.Key;
        bool v6 = k.IsIPv6;
        int need = v6 ? SizeIPv6 : SizeIPv4;
        if (dst.Length < need)
        {
            return 0;
        }

        dst[0] = Op;
        dst[1] = v6 ? FlagIPv6 : (byte)0;
        dst[2] = k.Protocol;
        dst[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(dst[4..], k.Zone);
        BinaryPrimitives.WriteUInt16BigEndian(dst[6..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(dst[8..], k.DestinationPort);
        int o = 10;
        o += RecordCodec.WriteAddress(dst[o..], k.SourceHigh, k.SourceLow, v6);
        o += RecordCodec.WriteAddress(dst[o..], k.DestinationHigh, k.DestinationLow, v6);
        BinaryPrimitives.WriteUInt64BigEndian(dst[o..], t.Version);
        dst[o + 8] = t.Owner;
        dst[o + 9] = t.ServiceClass;
        BinaryPrimitives.WriteUInt32BigEndian(dst[(o + 10)..], t.Count);
        BinaryPrimitives.WriteUInt32BigEndian(dst[(o + 14)..], t.LifetimeSeconds);
        BinaryPrimitives.WriteInt64BigEndian(dst[(o + 18)..], t.CreatedMs);
        BinaryPrimitives.WriteInt64BigEndian(dst[(o + 26)..], Math.Max(t.UpdatedMs, t.CreatedMs));
        return o + 34;
    }

    /// <summary>
    /// Reads one template record; returns bytes consumed, or 0 when the bytes do not form a valid one: another op,
    /// unknown flags, a protocol without ports (not TCP, UDP or SCTP), a nonzero state or source port, destination port
    /// 0, version 0, owner 0, count 0, a lifetime outside 1-86400 s, a negative creation or an update before it.
    /// </summary>
    public static int TryRead(ReadOnlySpan<byte> src, out ConnectionTemplate t)
    {
        t = default;
        if (src.Length < SizeIPv4 || src[0] != Op || (src[1] & ~FlagIPv6) != 0)
        {
            return 0;
        }

        bool v6 = (src[1] & FlagIPv6) != 0;
        int need = v6 ? SizeIPv6 : SizeIPv4;
        byte protocol = src[2];
        if (src.Length < need || !TemplateKeys.Covers(protocol) || src[3] != 0)
        {
            return 0;
        }

        ushort zone = BinaryPrimitives.ReadUInt16BigEndian(src[4..]);
        ushort sport = BinaryPrimitives.ReadUInt16BigEndian(src[6..]);
        ushort dport = BinaryPrimitives.ReadUInt16BigEndian(src[8..]);
        if (sport != 0 || dport == 0)
        {
            return 0;
        }

        int addr = v6 ? 16 : 4;
        int o = 10;
        RecordCodec.ReadAddress(src[o..], v6, out ulong sh, out ulong sl);
        o += addr;
        RecordCodec.ReadAddress(src[o..], v6, out ulong dh, out ulong dl);
        o += addr;
        var key = v6
            ? ConnectionKey.IPv6(sh, sl, dh, dl, 0, dport, protocol, zone)
            : ConnectionKey.IPv4((uint)sl, (uint)dl, 0, dport, protocol, zone);
        ulong version = BinaryPrimitives.ReadUInt64BigEndian(src[o..]);
        byte owner = src[o + 8];
        byte serviceClass = src[o + 9];
        uint count = BinaryPrimitives.ReadUInt32BigEndian(src[(o + 10)..]);
        uint lifetime = BinaryPrimitives.ReadUInt32BigEndian(src[(o + 14)..]);
        long created = BinaryPrimitives.ReadInt64BigEndian(src[(o + 18)..]);
        long updated = BinaryPrimitives.ReadInt64BigEndian(src[(o + 26)..]);
        if (version == 0 || owner == 0 || count == 0 || lifetime is 0 or > MaxLifetimeSeconds || created < 0 || updated < created)
        {
            return 0;
        }

        t = new ConnectionTemplate(key, owner, serviceClass, count, lifetime, created, updated, version);
        return need;
    }
}
