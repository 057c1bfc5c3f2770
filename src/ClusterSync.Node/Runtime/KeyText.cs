using System.Globalization;
using ClusterSync.Connections;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// <see cref="ConnectionKey.ToString"/>'s text (<c>tcp 10.0.0.1:40000 -> 192.168.1.1:443 zone 0</c>) written into a
/// span: no allocation for IPv4 keys (a streamed report of a million connections formats a million keys).
/// </summary>
internal static class KeyText
{
    /// <summary>Enough for two IPv6 addresses in brackets, ports, protocol and zone.</summary>
    public const int MaxLength = 128;

    /// <summary>Writes the key's text into <paramref name="destination"/> (at least <see cref="MaxLength"/> chars) and returns its length.</summary>
    public static int Format(in ConnectionKey key, Span<char> destination)
    {
        if (key.IsIPv6)
        {
            var text = key.ToString();
            text.CopyTo(destination);
            return text.Length;
        }

        int n = 0;
        switch (key.Protocol)
        {
            case 6: Append("tcp", destination, ref n); break;
            case 17: Append("udp", destination, ref n); break;
            case 1: Append("icmp", destination, ref n); break;
            case 58: Append("icmpv6", destination, ref n); break;
            default: Number(key.Protocol, destination, ref n); break;
        }

        destination[n++] = ' ';
        Address(key.SourceV4, destination, ref n);
        destination[n++] = ':';
        Number(key.SourcePort, destination, ref n);
        Append(" -> ", destination, ref n);
        Address(key.DestinationV4, destination, ref n);
        destination[n++] = ':';
        Number(key.DestinationPort, destination, ref n);
        Append(" zone ", destination, ref n);
        Number(key.Zone, destination, ref n);
        return n;
    }

    private static void Append(string s, Span<char> destination, ref int n)
    {
        s.CopyTo(destination[n..]);
        n += s.Length;
    }

    private static void Number(uint value, Span<char> destination, ref int n)
    {
        value.TryFormat(destination[n..], out int written, default, CultureInfo.InvariantCulture);
        n += written;
    }

    private static void Address(uint v4, Span<char> destination, ref int n)
    {
        for (int shift = 24; shift >= 0; shift -= 8)
        {
            Number((v4 >> shift) & 0xFF, destination, ref n);
            if (shift > 0)
            {
                destination[n++] = '.';
            }
        }
    }
}
