namespace ClusterSync.Transport;

/// <summary>Result of one datagram receive: how many bytes were written into the caller's buffer.</summary>
/// <param name="Length">Bytes received.</param>
/// <param name="PeerIndex">Index of the configured peer it came from, or -1 when the transport cannot tell.</param>
public readonly record struct DatagramReceiveResult(int Length, int PeerIndex);

/// <summary>
/// An unreliable, unordered datagram channel between a member and its configured peers (delta sync and
/// the control channel travel on it). Buffers belong to the caller: the channel neither keeps nor pools them.
/// </summary>
/// <remarks>
/// The engine calls <see cref="SendAsync"/> from one sender thread and one control thread, and
/// <see cref="ReceiveAsync"/> from a single dedicated receive loop; implementations may complete
/// both synchronously (the UDP transport does).
/// </remarks>
public interface IDatagramChannel : IDisposable
{
    /// <summary>Largest datagram the channel carries (the engine never sends more).</summary>
    int MaxDatagramSize { get; }

    /// <summary>Number of configured peers; peer indexes run from 0 to <c>PeerCount - 1</c>.</summary>
    int PeerCount { get; }

    /// <summary>Sends one datagram to one peer. Delivery is not guaranteed.</summary>
    ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default);

    /// <summary>Receives one datagram into <paramref name="buffer"/>. Ends with <see cref="OperationCanceledException"/> on cancellation.</summary>
    ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);
}

/// <summary>A reliable, ordered byte stream to a peer, used for full sync.</summary>
public interface IStreamChannel
{
    /// <summary>Opens a stream to a peer.</summary>
    ValueTask<Stream> ConnectAsync(int peerIndex, CancellationToken cancellationToken = default);

    /// <summary>Waits for a peer to open a stream to this member.</summary>
    ValueTask<Stream> AcceptAsync(CancellationToken cancellationToken = default);
}

/// <summary>Where a member listens and whom it talks to.</summary>
/// <param name="LocalAddress">Local endpoint, transport specific (for UDP <c>host:port</c>).</param>
/// <param name="PeerAddresses">Peer endpoints, in the order the engine indexes them.</param>
public sealed record TransportEndpoints(string LocalAddress, IReadOnlyList<string> PeerAddresses);

/// <summary>Creates channels of one transport kind. A named policy: the node picks a transport by <see cref="Name"/>.</summary>
public interface ISyncTransportFactory
{
    /// <summary>The transport's configuration name (for example <c>udp</c>).</summary>
    string Name { get; }

    /// <summary>Creates the datagram channel for delta sync.</summary>
    IDatagramChannel CreateDatagramChannel(TransportEndpoints endpoints, int maxDatagramSize);
}
