using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// The networks whose connections the source does not announce (<c>ignore</c>), matched against the original tuple's
/// source and destination as the parser holds them: 128 bits, IPv4 IPv4-mapped (<c>::ffff:a.b.c.d</c>), so an IPv4
/// network a.b.c.d/n is ::ffff:a.b.c.d/(96+n). No allocation per match.
/// </summary>
internal sealed class AddressFilter
{
    private readonly (ulong Hi, ulong Lo, ulong MaskHi, ulong MaskLo)[] _networks;

    public AddressFilter(IEnumerable<IPNetwork> networks)
    {
        _networks = [.. networks.Select(Compile)];
    }

    public int Count => _networks.Length;

    /// <summary>Whether the address (high and low 64 bits, IPv4 mapped) falls in one of the networks.</summary>
    public bool Matches(ulong hi, ulong lo)
    {
        foreach (var (nHi, nLo, mHi, mLo) in _networks)
        {
            if ((hi & mHi) == nHi && (lo & mLo) == nLo)
            {
                return true;
            }
        }

        return false;
    }

    private static (ulong, ulong, ulong, ulong) Compile(IPNetwork network)
    {
        Span<byte> bytes = stackalloc byte[16];
        int prefix = network.PrefixLength;
        if (network.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
        {
            network.BaseAddress.MapToIPv6().TryWriteBytes(bytes, out _);
            prefix += 96;
        }
        else
        {
            network.BaseAddress.TryWriteBytes(bytes, out _);
        }

        ulong maskHi = prefix >= 64 ? ulong.MaxValue : prefix == 0 ? 0 : ulong.MaxValue << (64 - prefix);
        ulong maskLo = prefix <= 64 ? 0 : prefix == 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefix);
        return (BinaryPrimitives.ReadUInt64BigEndian(bytes) & maskHi, BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]) & maskLo, maskHi, maskLo);
    }
}
