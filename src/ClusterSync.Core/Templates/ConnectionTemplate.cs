using ClusterSync.Connections;

namespace ClusterSync.Templates;

/// <summary>
/// A connection template (docs/templates.md): one synchronized entry that stands for every connection of one shape —
/// source address, destination address, destination port, protocol and zone, any source port. Its
/// <see cref="Key"/> is that shape as a <see cref="ConnectionKey"/> whose source port is 0. It lives
/// <see cref="LifetimeSeconds"/> after <see cref="UpdatedMs"/>, the last connection of its shape its owner saw (as
/// far as the owner has told its peers); <see cref="Count"/> is how many connections it covered (saturating).
/// </summary>
public readonly record struct ConnectionTemplate(
    ConnectionKey Key,
    byte Owner,
    byte ServiceClass,
    uint Count,
    uint LifetimeSeconds,
    long CreatedMs,
    long UpdatedMs,
    ulong Version)
{
    /// <summary>Unix milliseconds at which the template expires, on every member.</summary>
    public long ExpiresAtMs => UpdatedMs + (LifetimeSeconds * 1000L);

    /// <summary>True when <paramref name="connection"/> has this template's shape (any source port).</summary>
    public bool Matches(in ConnectionKey connection) => TemplateKeys.ShapeOf(connection).Equals(Key);

    /// <summary>True when the template is live at <paramref name="nowMs"/>.</summary>
    public bool IsLiveAt(long nowMs) => nowMs < ExpiresAtMs;
}

/// <summary>The shape of a connection, the key of its template.</summary>
public static class TemplateKeys
{
    /// <summary>True for the protocols templates cover: TCP, UDP, SCTP (those with a source port).</summary>
    public static bool Covers(byte protocol) => protocol is 6 or 17 or 132;

    /// <summary>The template key of <paramref name="connection"/>: the same key with source port 0.</summary>
    public static ConnectionKey ShapeOf(in ConnectionKey connection) => connection.IsIPv6
        ? ConnectionKey.IPv6(connection.SourceHigh, connection.SourceLow, connection.DestinationHigh, connection.DestinationLow,
            0, connection.DestinationPort, connection.Protocol, connection.Zone)
        : ConnectionKey.IPv4((uint)connection.SourceLow, (uint)connection.DestinationLow, 0, connection.DestinationPort,
            connection.Protocol, connection.Zone);
}

/// <summary>
/// A replica sink that also takes the live templates on failover (<c>MembershipController</c> calls it right after
/// <c>IReplicaSink.Commit</c>), so it can accept an unknown connection that matches one.
/// </summary>
public interface ITemplateSink
{
    /// <summary>Installs the live templates of the committed state (replacing those of an earlier commit).</summary>
    void CommitTemplates(IReadOnlyList<ConnectionTemplate> templates);
}
