using ClusterSync.Connections;

namespace ClusterSync.Classification;

/// <summary>
/// The protocol-state extension of a protocol plugin (FTP, SIP, ...): ties a new connection to the control connection
/// it belongs to (an FTP data connection to its control connection, SIP media to its signalling connection). Implemented
/// by the classifier a <see cref="Plugins.PluginKind.Protocol"/> plugin creates.
/// </summary>
/// <remarks>
/// The engine then keeps the control connection and its related connections as one unit: a related connection takes
/// its control connection's service class, is announced only together with it (in the same datagram), is sent with it
/// whenever the control connection is announced, and is removed when the control connection ends. A peer applies a
/// related connection only while its control connection is present. Called on the data-plane thread for each new
/// connection, after <see cref="IConnectionClassifier.Classify"/>; the same isolation rules apply (an exception, a hang
/// or a wrong answer is counted and, past the limit, disables the plugin).
/// </remarks>
public interface IRelatedConnectionResolver
{
    /// <summary>
    /// Whether <paramref name="connection"/> belongs to a control connection; if so, which one. The engine checks that the
    /// control connection is live in its table, so a stale answer does no harm.
    /// </summary>
    bool TryGetControlConnection(in ConnectionKey connection, out ConnectionKey control);
}
