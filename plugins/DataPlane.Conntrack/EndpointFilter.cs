using System.Buffers.Binary;
using System.Net.Sockets;
using ClusterSync.DataPlane;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// The node's own sync-link endpoints (<see cref="DataPlaneContext.SyncLinkEndpoints"/>): a connection with one of them at
/// either end of its original tuple (address, port and protocol all equal) is the node's own sync traffic and is not
/// announced. Matched as the parser holds addresses (128 bits, IPv4 mapped). No allocation per match.
/// </summary>
internal sealed class EndpointFilter
{
    private readonly HashSet<(ulong Hi, ulong Lo, ushort Port, byte Protocol)> _endpoints = [];

    public EndpointFilter(IEnumerable<SyncLinkEndpoint> endpoints)
    {
        Span<byte> bytes = stackalloc byte[16];
        foreach (var e in endpoints)
        {
            var address = e.Address.AddressFamily == AddressFamily.InterNetwork ? e.Address.MapToIPv6() : e.Address;
            if (address.AddressFamily != AddressFamily.InterNetworkV6 || !address.TryWriteBytes(bytes, out _))
            {
                continue;
            }

            _endpoints.Add((BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]), e.Port, e.Protocol));
        }
    }

    public int Count => _endpoints.Count;

    /// <summary>Whether (address, port, protocol) is one of the endpoints.</summary>
    public bool Matches(ulong hi, ulong lo, ushort port, byte protocol) => _endpoints.Contains((hi, lo, port, protocol));
}
