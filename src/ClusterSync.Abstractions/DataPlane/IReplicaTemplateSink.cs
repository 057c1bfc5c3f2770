using ClusterSync.Connections;

namespace ClusterSync.DataPlane;

/// <summary>
/// Optional, on an <see cref="IReplicaSink"/>: the sink also receives the live connection templates of the committed
/// state (docs/templates.md), so that its data plane can accept, for a bounded time, a connection it never heard of
/// whose shape matches one — a short connection that was never synchronized survives the failover. A sink that does
/// not implement it receives connections only.
/// </summary>
/// <remarks>
/// The host calls <see cref="CommitTemplates"/> after <see cref="IReplicaSink.Commit"/> of the same takeover (failover,
/// or a load-sharing member gaining connections), on the same task as that commit (never on the membership thread).
/// Each call replaces what an earlier call installed. The list may be empty (nothing to install; an earlier
/// installation may end). Added in contract version 2 (additive: plugins built before it are unaffected).
/// </remarks>
public interface IReplicaTemplateSink
{
    /// <summary>Installs <paramref name="templates"/> (all live when the host took its snapshot), replacing an earlier call's.</summary>
    void CommitTemplates(IReadOnlyList<ReplicaTemplate> templates);
}

/// <summary>
/// One connection template as a data plane sees it: every connection with the <see cref="Shape"/>'s source address,
/// destination address, destination port, protocol (TCP, UDP or SCTP) and zone, whatever its source port.
/// </summary>
public readonly struct ReplicaTemplate
{
    /// <summary>A template of <paramref name="shape"/> (its source port is ignored and stored as 0).</summary>
    /// <param name="shape">The shape: a connection key whose source port does not matter.</param>
    /// <param name="serviceClass">The service class index of the connections it stands for.</param>
    /// <param name="lifetimeSeconds">How long it lives after <paramref name="updatedMs"/>.</param>
    /// <param name="updatedMs">Unix milliseconds of the last connection of its shape the cluster heard of.</param>
    public ReplicaTemplate(ConnectionKey shape, byte serviceClass, uint lifetimeSeconds, long updatedMs)
    {
        Shape = shape.IsIPv6
            ? ConnectionKey.IPv6(shape.SourceHigh, shape.SourceLow, shape.DestinationHigh, shape.DestinationLow, 0, shape.DestinationPort, shape.Protocol, shape.Zone)
            : ConnectionKey.IPv4(shape.SourceV4, shape.DestinationV4, 0, shape.DestinationPort, shape.Protocol, shape.Zone);
        ServiceClass = serviceClass;
        LifetimeSeconds = lifetimeSeconds;
        UpdatedMs = updatedMs;
    }

    /// <summary>The shape (source port 0): source and destination address, destination port, protocol, zone.</summary>
    public ConnectionKey Shape { get; }

    /// <summary>The service class index of the connections it stands for.</summary>
    public byte ServiceClass { get; }

    /// <summary>How long the template lives after <see cref="UpdatedMs"/>, in seconds.</summary>
    public uint LifetimeSeconds { get; }

    /// <summary>Unix milliseconds of the last connection of its shape the cluster heard of.</summary>
    public long UpdatedMs { get; }

    /// <summary>Unix milliseconds at which the template expires (on every member, without a message).</summary>
    public long ExpiresAtMs => UpdatedMs + (LifetimeSeconds * 1000L);
}
