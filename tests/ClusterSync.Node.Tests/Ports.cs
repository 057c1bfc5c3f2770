using System.Net;
using System.Net.Sockets;

namespace ClusterSync.Node.Tests;

/// <summary>Free loopback ports, never handed out twice in one test run.</summary>
internal static class Ports
{
    private static readonly HashSet<int> s_given = [];

    public static int FreeUdp() => Unique(() =>
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    });

    public static int FreeTcp() => Unique(() =>
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    });

    private static int Unique(Func<int> next)
    {
        lock (s_given)
        {
            for (int i = 0; i < 100; i++)
            {
                int port = next();
                if (s_given.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("no free loopback port");
    }
}
