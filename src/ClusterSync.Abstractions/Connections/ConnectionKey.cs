using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterSync.Connections;

/// <summary>
/// The key of a connection: its original-direction 5-tuple plus a zone.
/// IPv4 addresses are stored IPv4-mapped (<c>::ffff:a.b.c.d</c>) so one 40-byte struct serves both families.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct ConnectionKey : IEquatable<ConnectionKey>
{
    private const ulong V4MappedLow = 0x0000_FFFF_0000_0000UL;

    private readonly ulong _srcHi;
    private readonly ulong _srcLo;
    private readonly ulong _dstHi;
    private readonly ulong _dstLo;
    // sport:16 | dport:16 | zone:16 | protocol:8 | family:8
    private readonly ulong _meta;

    private ConnectionKey(ulong srcHi, ulong srcLo, ulong dstHi, ulong dstLo, ulong meta)
    {
        _srcHi = srcHi;
        _srcLo = srcLo;
        _dstHi = dstHi;
        _dstLo = dstLo;
        _meta = meta;
    }

    /// <summary>Builds an IPv4 key from host-order addresses.</summary>
    public static ConnectionKey IPv4(uint source, uint destination, ushort sourcePort, ushort destinationPort, byte protocol, ushort zone = 0)
        => new(0, V4MappedLow | source, 0, V4MappedLow | destination, Meta(sourcePort, destinationPort, zone, protocol, 4));

    /// <summary>Builds an IPv6 key from the two 64-bit halves (big-endian order) of each address.</summary>
    public static ConnectionKey IPv6(ulong sourceHigh, ulong sourceLow, ulong destinationHigh, ulong destinationLow,
        ushort sourcePort, ushort destinationPort, byte protocol, ushort zone = 0)
        => new(sourceHigh, sourceLow, destinationHigh, destinationLow, Meta(sourcePort, destinationPort, zone, protocol, 6));

    /// <summary>Builds a key from <see cref="IPAddress"/> values (allocates; not for hot paths).</summary>
    public static ConnectionKey Create(IPAddress source, ushort sourcePort, IPAddress destination, ushort destinationPort, byte protocol, ushort zone = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (source.AddressFamily != destination.AddressFamily)
        {
            throw new ArgumentException("Source and destination must be of the same address family.", nameof(destination));
        }

        if (source.AddressFamily == AddressFamily.InterNetwork)
        {
            return IPv4(ToUInt32(source), ToUInt32(destination), sourcePort, destinationPort, protocol, zone);
        }

        Span<byte> s = stackalloc byte[16];
        Span<byte> d = stackalloc byte[16];
        source.TryWriteBytes(s, out _);
        destination.TryWriteBytes(d, out _);
        return IPv6(BinaryPrimitives.ReadUInt64BigEndian(s), BinaryPrimitives.ReadUInt64BigEndian(s[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(d), BinaryPrimitives.ReadUInt64BigEndian(d[8..]),
            sourcePort, destinationPort, protocol, zone);
    }

    private static uint ToUInt32(IPAddress address)
    {
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private static ulong Meta(ushort sport, ushort dport, ushort zone, byte protocol, byte family)
        => ((ulong)sport << 48) | ((ulong)dport << 32) | ((ulong)zone << 16) | ((ulong)protocol << 8) | family;

    /// <summary>True for an IPv6 key, false for IPv4.</summary>
    public bool IsIPv6 => (byte)_meta == 6;

    /// <summary>IP address family: 4 or 6; 0 for the default (empty) key.</summary>
    public byte Family => (byte)_meta;

    /// <summary>IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).</summary>
    public byte Protocol => (byte)(_meta >> 8);

    /// <summary>Conntrack zone (0 by default).</summary>
    public ushort Zone => (ushort)(_meta >> 16);

    /// <summary>Original-direction destination port (or ICMP type/code).</summary>
    public ushort DestinationPort => (ushort)(_meta >> 32);

    /// <summary>Original-direction source port (or ICMP id).</summary>
    public ushort SourcePort => (ushort)(_meta >> 48);

    /// <summary>High 64 bits of the source address (0 for IPv4).</summary>
    public ulong SourceHigh => _srcHi;

    /// <summary>Low 64 bits of the source address (IPv4-mapped for IPv4).</summary>
    public ulong SourceLow => _srcLo;

    /// <summary>High 64 bits of the destination address (0 for IPv4).</summary>
    public ulong DestinationHigh => _dstHi;

    /// <summary>Low 64 bits of the destination address (IPv4-mapped for IPv4).</summary>
    public ulong DestinationLow => _dstLo;

    /// <summary>IPv4 source address in host order (only meaningful when <see cref="IsIPv6"/> is false).</summary>
    public uint SourceV4 => (uint)_srcLo;

    /// <summary>IPv4 destination address in host order (only meaningful when <see cref="IsIPv6"/> is false).</summary>
    public uint DestinationV4 => (uint)_dstLo;

    /// <summary>The tuple a reply packet carries when no NAT applies: source and destination swapped.</summary>
    public ReplyTuple InverseTuple => new(_dstHi, _dstLo, _srcHi, _srcLo, DestinationPort, SourcePort);

    /// <summary>The source address as an <see cref="IPAddress"/> (allocates).</summary>
    public IPAddress SourceAddress => ToAddress(_srcHi, _srcLo, IsIPv6);

    /// <summary>The destination address as an <see cref="IPAddress"/> (allocates).</summary>
    public IPAddress DestinationAddress => ToAddress(_dstHi, _dstLo, IsIPv6);

    internal static IPAddress ToAddress(ulong hi, ulong lo, bool v6)
    {
        if (!v6)
        {
            return new IPAddress(BinaryPrimitives.ReverseEndianness((uint)lo));
        }

        Span<byte> b = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(b, hi);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], lo);
        return new IPAddress(b);
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Equals(ConnectionKey other)
        => _srcLo == other._srcLo && _dstLo == other._dstLo && _meta == other._meta && _srcHi == other._srcHi && _dstHi == other._dstHi;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ConnectionKey k && Equals(k);

    /// <summary>A 64-bit hash mixed with <paramref name="seed"/>; tables seed it per process so crafted tuples cannot collide on purpose.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Hash64(ulong seed)
    {
        const ulong p = 0x9E3779B97F4A7C15UL;
        ulong h = seed ^ _meta;
        h = (h ^ _srcLo) * p;
        h = BitOperations.RotateLeft(h, 29) ^ _dstLo;
        h *= p;
        h = BitOperations.RotateLeft(h, 29) ^ _srcHi;
        h *= p;
        h = BitOperations.RotateLeft(h, 29) ^ _dstHi;
        h *= p;
        h ^= h >> 32;
        h *= 0xD6E8FEB86659FD93UL;
        h ^= h >> 32;
        return h;
    }

    /// <inheritdoc />
    public override int GetHashCode() => (int)Hash64(0x5EED);

    /// <summary>Equality.</summary>
    public static bool operator ==(ConnectionKey left, ConnectionKey right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(ConnectionKey left, ConnectionKey right) => !left.Equals(right);

    /// <inheritdoc />
    public override string ToString()
    {
        var p = Protocol switch { 6 => "tcp", 17 => "udp", 1 => "icmp", 58 => "icmpv6", _ => Protocol.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return IsIPv6
            ? $"{p} [{SourceAddress}]:{SourcePort} -> [{DestinationAddress}]:{DestinationPort} zone {Zone}"
            : $"{p} {SourceAddress}:{SourcePort} -> {DestinationAddress}:{DestinationPort} zone {Zone}";
    }
}
