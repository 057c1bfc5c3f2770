using System.Net;
using System.Net.Sockets;
using ClusterSync.Node.Configuration;
using ClusterSync.Transport;

namespace ClusterSync.Node.Runtime;

/// <summary>Opens the node's delta-sync transport: one UDP socket for a single sync link, one per link behind a <see cref="MultiLinkChannel"/> otherwise.</summary>
internal static class SyncLinkChannels
{
    public static IDatagramChannel Open(NodeModel loaded)
    {
        int mtu = loaded.EngineOptions.Mtu;
        int buffer = loaded.Config.Sync.SocketBufferBytes;
        if (loaded.LocalLinkEndPoints.Count <= 1)
        {
            return Bind(loaded, 0, loaded.LocalEndPoint, loaded.PeerEndPoints, mtu, buffer);
        }

        var links = new List<SyncLink>();
        try
        {
            for (int l = 0; l < loaded.LocalLinkEndPoints.Count; l++)
            {
                links.Add(new SyncLink(loaded.LinkIds[l], Bind(loaded, l, loaded.LocalLinkEndPoints[l], loaded.PeerLinkEndPoints[l], mtu, buffer)));
            }
        }
        catch
        {
            links.ForEach(l => l.Channel.Dispose());
            throw;
        }

        return new MultiLinkChannel(links);
    }

    private static UdpDatagramChannel Bind(NodeModel loaded, int link, IPEndPoint local, IReadOnlyList<IPEndPoint> peers, int mtu, int buffer)
    {
        try
        {
            return new UdpDatagramChannel(local, peers, mtu, buffer);
        }
        catch (SocketException ex)
        {
            var field = loaded.Self.Links.Count == 0
                ? $"cluster.members[{loaded.SelfIndex}].address"
                : $"cluster.members[{loaded.SelfIndex}].links[{IndexOf(loaded.Self.Links, loaded.LinkIds[link])}].address";
            throw new SyncBindException(field, local, ex);
        }
    }

    private static int IndexOf(IReadOnlyList<LinkConfig> links, byte id)
    {
        for (int i = 0; i < links.Count; i++)
        {
            if (links[i].Id == id)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>A sync link's UDP address could not be bound: which field, which address, why.</summary>
internal sealed class SyncBindException(string field, IPEndPoint endPoint, SocketException inner)
    : Exception($"{field}: cannot bind UDP {endPoint}: {inner.Message}", inner)
{
    public string Field { get; } = field;

    public IPEndPoint EndPoint { get; } = endPoint;

    public SocketError Error { get; } = inner.SocketErrorCode;
}
