using System.Net;
using System.Net.Sockets;

namespace ClusterSync.TestUtilities;

/// <summary>
/// Loopback ports the OS considered free a moment ago (bound to 0, then released), never handed out twice in this test
/// run: the OS may give a just-released port again, and a node configuration with the same port twice (sync, full
/// sync, control) is rightly refused.
/// </summary>
public static class Ports
{
    private static readonly HashSet<int> s_handedOut = [];

    public static int FreeUdp() => Unique(SocketType.Dgram, ProtocolType.Udp);

    public static int FreeTcp() => Unique(SocketType.Stream, ProtocolType.Tcp);

    private static int Unique(SocketType type, ProtocolType protocol)
    {
        lock (s_handedOut)
        {
            for (int attempt = 0; attempt < 100; attempt++)
            {
                using var s = new Socket(AddressFamily.InterNetwork, type, protocol);
                s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                if (s_handedOut.Add(((IPEndPoint)s.LocalEndPoint!).Port))
                {
                    return ((IPEndPoint)s.LocalEndPoint!).Port;
                }
            }
        }

        throw new InvalidOperationException("no fresh ephemeral port after 100 attempts");
    }
}
