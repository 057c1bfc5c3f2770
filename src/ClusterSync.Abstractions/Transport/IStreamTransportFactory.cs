namespace ClusterSync.Transport;

/// <summary>
/// Optional second face of a transport: reliable streams for full sync. A transport factory that also implements this
/// interface carries full sync itself; a node whose transport does not falls back to the built-in TCP stream channel.
/// </summary>
public interface IStreamTransportFactory
{
    /// <summary>The transport's configuration name, the same as the datagram factory's.</summary>
    string Name { get; }

    /// <summary>
    /// Creates the stream channel for full sync (peer indexes as in <see cref="TransportEndpoints.PeerAddresses"/>).
    /// The caller disposes it when it implements <see cref="IDisposable"/>.
    /// </summary>
    IStreamChannel CreateStreamChannel(TransportEndpoints endpoints);
}
