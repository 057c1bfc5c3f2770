using System.Net;
using System.Net.Sockets;

namespace ClusterSync.Transport;

/// <summary>The built-in stream channel (TCP) that full sync uses; encryption is layered on top by full sync.</summary>
public sealed class TcpStreamChannel : IStreamChannel, IDisposable
{
    private readonly TcpListener _listener;
    private readonly IReadOnlyList<IPEndPoint> _peers;

    public TcpStreamChannel(IPEndPoint listen, IReadOnlyList<IPEndPoint> peers)
    {
        _listener = new TcpListener(listen);
        _listener.Start();
        _peers = peers;
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public async ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default)
    {
        var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await client.ConnectAsync(_peers[peerIndex], cancellationToken).ConfigureAwait(false);
            return new NetworkStream(client, ownsSocket: true);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public async ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var socket = await _listener.AcceptSocketAsync(cancellationToken).ConfigureAwait(false);
        socket.NoDelay = true;
        return new NetworkStream(socket, ownsSocket: true);
    }

    public void Dispose() => _listener.Stop();
}
