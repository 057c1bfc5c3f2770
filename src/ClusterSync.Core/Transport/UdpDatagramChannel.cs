using System.Net;
using System.Net.Sockets;
using ClusterSync.Transport;

namespace ClusterSync.Transport;

/// <summary>
/// The built-in transport: one UDP socket, peers addressed by pre-serialised socket addresses, so a send or a
/// receive allocates nothing. Both calls complete synchronously: the engine runs them on dedicated threads.
/// </summary>
public sealed class UdpDatagramChannel : IDatagramChannel, IReceiveDropCounts
{
    public const int DefaultSocketBuffer = 4 * 1024 * 1024;
    private static readonly TimeSpan s_receivePoll = TimeSpan.FromMilliseconds(250);
    private readonly Socket _socket;
    private SocketAddress[] _peers;
    private readonly SocketAddress _received;
    private readonly LinuxBatchReceiver? _batch;
    private long _sendErrors;
    private volatile bool _disposed;

    public UdpDatagramChannel(IPEndPoint local, IReadOnlyList<IPEndPoint> peers, int maxDatagramSize, int socketBuffer = DefaultSocketBuffer)
    {
        _socket = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _socket.ReceiveBufferSize = socketBuffer;
            _socket.SendBufferSize = socketBuffer;
            _socket.ReceiveTimeout = (int)s_receivePoll.TotalMilliseconds;
            _socket.Bind(local);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }

        _peers = peers.Select(p => p.Serialize()).ToArray();
        _received = new SocketAddress(local.AddressFamily);
        MaxDatagramSize = maxDatagramSize;
        _batch = LinuxBatchReceiver.TryCreate(_socket, maxDatagramSize + 1);
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Sets the peers after binding (tests bind to port 0 first, then learn each other's ports).</summary>
    public void SetPeers(IReadOnlyList<IPEndPoint> peers) => _peers = peers.Select(p => p.Serialize()).ToArray();

    public int MaxDatagramSize { get; }

    private long _emptyDatagrams;
    private long _oversizeDatagrams;

    /// <inheritdoc />
    public long EmptyDatagrams => Interlocked.Read(ref _emptyDatagrams);

    /// <inheritdoc />
    public long OversizeDatagrams => Interlocked.Read(ref _oversizeDatagrams) + (_batch?.Truncated ?? 0);

    public int PeerCount => _peers.Length;

    public long SendErrors => Interlocked.Read(ref _sendErrors);

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        try
        {
            _socket.SendTo(datagram.Span, SocketFlags.None, _peers[peerIndex]);
        }
        catch (SocketException)
        {
            // Unreachable peer, full buffer: a lost datagram, which the protocol repairs. Counted.
            Interlocked.Increment(ref _sendErrors);
        }
        catch (ObjectDisposedException) when (_disposed)
        {
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_disposed)
            {
                throw new OperationCanceledException("The channel is closed.");
            }

            if (_batch is not null)
            {
                int got = _batch.Receive(buffer.Span, out var source);
                if (got == 0)
                {
                    if (!source.IsEmpty)
                    {
                        Interlocked.Increment(ref _emptyDatagrams); // an empty datagram (not a receive timeout)
                    }

                    continue;
                }

                if (got < 0)
                {
                    throw new OperationCanceledException("The channel is closed.");
                }

                return new ValueTask<DatagramReceiveResult>(new DatagramReceiveResult(got, PeerOf(source)));
            }

            int n;
            try
            {
                n = _socket.ReceiveFrom(buffer.Span, SocketFlags.None, _received);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.MessageSize)
            {
                Interlocked.Increment(ref _oversizeDatagrams); // larger than the buffer: cut by the kernel
                continue;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock
                                                  or SocketError.ConnectionReset or SocketError.Interrupted)
            {
                continue;
            }
            catch (Exception ex) when (_disposed && ex is SocketException or ObjectDisposedException)
            {
                throw new OperationCanceledException("The channel is closed.", ex);
            }

            if (n == 0)
            {
                Interlocked.Increment(ref _emptyDatagrams);
                continue;
            }

            return new ValueTask<DatagramReceiveResult>(new DatagramReceiveResult(n, PeerOf(_received.Buffer.Span[.._received.Size])));
        }
    }

    private int PeerOf(ReadOnlySpan<byte> source)
    {
        for (int i = 0; i < _peers.Length; i++)
        {
            var p = _peers[i];
            if (source.SequenceEqual(p.Buffer.Span[..p.Size]))
            {
                return i;
            }
        }

        return -1;
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
        _batch?.Dispose();
    }

    /// <summary>Parses <c>address[:port]</c> or <c>[v6]:port</c> (port 8116 when omitted); the error names what was expected.</summary>
    public static bool TryParseEndPoint(string text, out IPEndPoint endPoint, out string error)
    {
        error = "";
        if (IPAddress.TryParse(text, out var bare) && !text.StartsWith('['))
        {
            endPoint = new IPEndPoint(bare, Engine.SyncEngineOptions.DefaultPort);
            return true;
        }

        if (IPEndPoint.TryParse(text, out var ep) && ep.Port is > 0 and <= 65535)
        {
            endPoint = ep;
            return true;
        }

        endPoint = new IPEndPoint(IPAddress.Loopback, 0);
        error = $"expected an IP address with an optional port like '10.0.0.1:8116' or '[fd00::1]:8116' (default port {Engine.SyncEngineOptions.DefaultPort}), found '{text}'";
        return false;
    }
}

/// <summary>The named policy for the built-in UDP transport.</summary>
internal sealed class UdpTransportFactory : ISyncTransportFactory
{
    public const string TransportName = "udp";

    public string Name => TransportName;

    public IDatagramChannel CreateDatagramChannel(TransportEndpoints endpoints, int maxDatagramSize)
    {
        var errors = new List<string>();
        if (!UdpDatagramChannel.TryParseEndPoint(endpoints.LocalAddress, out var local, out var e1))
        {
            errors.Add($"transport.local: {e1}");
        }

        var peers = new List<IPEndPoint>();
        for (int i = 0; i < endpoints.PeerAddresses.Count; i++)
        {
            if (UdpDatagramChannel.TryParseEndPoint(endpoints.PeerAddresses[i], out var p, out var e))
            {
                peers.Add(p);
            }
            else
            {
                errors.Add($"transport.peers[{i}]: {e}");
            }
        }

        if (errors.Count > 0)
        {
            throw ConfigurationErrors.All(errors);
        }

        return new UdpDatagramChannel(local, peers, maxDatagramSize);
    }
}
