using System.Net;
using ClusterSync.Transport;

namespace ClusterSync.Cli.Bench;

/// <summary>The delta-sync benchmarks' link: two UDP channels on loopback, each the other's only peer.</summary>
internal static class LoopbackLink
{
    /// <summary>Binds both channels to ephemeral loopback ports (datagrams up to <paramref name="maxDatagram"/> bytes) and peers them.</summary>
    public static (UdpDatagramChannel A, UdpDatagramChannel B) Create(int maxDatagram = 1500)
    {
        var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], maxDatagram);
        var b = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], maxDatagram);
        a.SetPeers([b.LocalEndPoint]);
        b.SetPeers([a.LocalEndPoint]);
        return (a, b);
    }
}
