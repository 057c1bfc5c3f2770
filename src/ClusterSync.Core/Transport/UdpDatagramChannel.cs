using System.Net;
using System.Net.Sockets;
using ClusterSync.Transport;

namespace ClusterSync.Transport;

/// <summary>
/// The built-in transport: one UDP socket, peers addressed by pre-serialised socket addresses, so a send or a
/// receive allocates nothing. Both calls complete synchronously: the engine runs them on dedicated threads.
/// On Linux the engine's batches leave with <c>sendmmsg</c> and UDP GSO and arrive with <c>recvmmsg</c> and UDP GRO
/// where the kernel has them (<see cref="TransportPath"/> says which); elsewhere one system call per datagram.
/// </summary>
public sealed class UdpDatagramChannel : IDatagramChannel, IReceiveDropCounts, IDatagramBatchSender, IBufferedReceive
{
    public const int DefaultSocketBuffer = 4 * 1024 * 1024;
    private static readonly TimeSpan s_receivePoll = TimeSpan.FromMilliseconds(250);
    private readonly Socket _socket;
    private SocketAddress[] _peers;
    private readonly SocketAddress _received;
    private readonly LinuxBatchReceiver? _batch;
    private readonly LinuxBatchSender? _batchSender;
    private long _sendErrors;
    private long _sendCalls;
    private volatile bool _disposed;

    public UdpDatagramChannel(IPEndPoint local, IReadOnlyList<IPEndPoint> peers, int maxDatagramSize, int socketBuffer = DefaultSocketBuffer)
        : this(local, peers, maxDatagramSize, socketBuffer, UdpOffloads.FromEnvironment())
    {
    }

    /// <summary>A channel with only the kernel features in <paramref name="offload"/> (tests and benchmarks compare the paths).</summary>
    internal UdpDatagramChannel(IPEndPoint local, IReadOnlyList<IPEndPoint> peers, int maxDatagramSize, int socketBuffer, UdpOffload offload)
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
        _batch = (offload & UdpOffload.BatchReceive) != 0 ? LinuxBatchReceiver.TryCreate(_socket, maxDatagramSize + 1, (offload & UdpOffload.Gro) != 0) : null;
        _batchSender = (offload & UdpOffload.BatchSend) != 0 ? LinuxBatchSender.TryCreate(_socket, maxDatagramSize, (offload & UdpOffload.Gso) != 0) : null;
    }

    /// <summary>
    /// How datagrams leave and arrive: <c>sendmmsg+gso</c>, <c>sendmmsg</c> (no UDP GSO in the kernel, or refused:
    /// <c>sendmmsg (gso refused: errno N)</c>) or <c>sendto</c>; <c>recvmmsg+gro</c>, <c>recvmmsg</c> or <c>recvfrom</c>.
    /// </summary>
    public string TransportPath
    {
        get
        {
            string send = _batchSender is null ? "sendto"
                : _batchSender.Gso ? "sendmmsg+gso"
                : _batchSender.GsoRefusedErrno != 0 ? $"sendmmsg (gso refused: errno {_batchSender.GsoRefusedErrno})"
                : "sendmmsg";
            string receive = _batch is null ? "recvfrom" : _batch.Gro ? "recvmmsg+gro" : "recvmmsg";
            return $"{send}/{receive}";
        }
    }

    /// <inheritdoc />
    public int PathChanges => _batchSender is { GsoRefusedErrno: not 0 } ? 1 : 0;

    /// <summary>Send system calls made (one per datagram without batching; one per batch of up to 64 messages with it).</summary>
    public long SendCalls => Interlocked.Read(ref _sendCalls) + (_batchSender?.Calls ?? 0);

    /// <summary>Datagrams sent inside GSO messages (two or more datagrams through the stack as one).</summary>
    public long GsoMessages => _batchSender?.GsoMessages ?? 0;

    /// <summary>Datagrams received inside a coalesced (GRO) buffer.</summary>
    public long GroDatagrams => _batch?.Coalesced ?? 0;

    /// <summary>The socket (tests turn kernel features off on it to check the fallbacks).</summary>
    internal Socket Socket => _socket;

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

    /// <inheritdoc />
    bool IBufferedReceive.HasBufferedDatagram => _batch is { HasBuffered: true };

    public long SendErrors => Interlocked.Read(ref _sendErrors) + (_batchSender?.Errors ?? 0);

    /// <inheritdoc />
    public void SendBatch(ReadOnlySpan<ReadOnlyMemory<byte>> datagrams, int peerIndex)
    {
        if (_batchSender is not null)
        {
            if (_batchSender.Send(datagrams, _peers[peerIndex]) || _disposed)
            {
                return;
            }

            // Another thread's batch is under way (the engine sends batches from its sender thread only): one at a time.
        }

        foreach (var d in datagrams)
        {
            _ = SendAsync(d, peerIndex);
        }
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        try
        {
            Interlocked.Increment(ref _sendCalls);
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
        _batchSender?.Dispose();
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

/// <summary>The kernel features the UDP transport may use where the kernel has them (all by default).</summary>
[Flags]
internal enum UdpOffload
{
    None = 0,

    /// <summary><c>recvmmsg</c>: many datagrams per receive call.</summary>
    BatchReceive = 1,

    /// <summary><c>sendmmsg</c>: many datagrams per send call.</summary>
    BatchSend = 2,

    /// <summary>UDP GSO (<c>UDP_SEGMENT</c>): a run of equal-length datagrams through the stack as one (with <see cref="BatchSend"/>).</summary>
    Gso = 4,

    /// <summary>UDP GRO (<c>UDP_GRO</c>): coalesced runs received as one buffer (with <see cref="BatchReceive"/>).</summary>
    Gro = 8,

    All = BatchReceive | BatchSend | Gso | Gro,
}

internal static class UdpOffloads
{
    /// <summary>
    /// All features, less those turned off in the environment (for comparisons on one machine, not for production):
    /// <c>CLUSTERSYNC_UDP_BATCH=0</c> (no sendmmsg, so no GSO either), <c>CLUSTERSYNC_UDP_GSO=0</c>, <c>CLUSTERSYNC_UDP_GRO=0</c>.
    /// </summary>
    public static UdpOffload FromEnvironment()
    {
        var offload = UdpOffload.All;
        if (Environment.GetEnvironmentVariable("CLUSTERSYNC_UDP_BATCH") == "0")
        {
            offload &= ~(UdpOffload.BatchSend | UdpOffload.Gso);
        }

        if (Environment.GetEnvironmentVariable("CLUSTERSYNC_UDP_GSO") == "0")
        {
            offload &= ~UdpOffload.Gso;
        }

        if (Environment.GetEnvironmentVariable("CLUSTERSYNC_UDP_GRO") == "0")
        {
            offload &= ~UdpOffload.Gro;
        }

        return offload;
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
