namespace ClusterSync.Connections;

/// <summary>What happened to a connection in the data plane.</summary>
public enum ConnectionEventKind : byte
{
    /// <summary>A new connection.</summary>
    New = 1,
    /// <summary>A change of state, timeout, flags or counters.</summary>
    Update = 2,
    /// <summary>The connection ended.</summary>
    Destroy = 3,
}

/// <summary>Packet and byte counters of both directions (optional; synchronized only when present).</summary>
public readonly record struct ConnectionCounters(ulong OriginalPackets, ulong OriginalBytes, ulong ReplyPackets, ulong ReplyBytes);

/// <summary>
/// One event from a data-plane source. The engine assigns <see cref="ConnectionEntry.Version"/>,
/// <see cref="ConnectionEntry.Owner"/>, <see cref="ConnectionEntry.ServiceClass"/> and <see cref="ConnectionEntry.UpdatedMs"/>;
/// the source fills the reply tuple, state, status, timeout and creation time.
/// </summary>
public struct ConnectionEvent
{
    /// <summary>New, update or destroy.</summary>
    public ConnectionEventKind Kind;
    /// <summary>The connection.</summary>
    public ConnectionKey Key;
    /// <summary>Its state as the data plane sees it.</summary>
    public ConnectionEntry Entry;
    /// <summary>Counters, when <see cref="HasCounters"/> is set.</summary>
    public ConnectionCounters Counters;
    /// <summary>Whether <see cref="Counters"/> carries values to synchronize.</summary>
    public bool HasCounters;

    /// <summary>Convenience constructor for a connection without NAT.</summary>
    public static ConnectionEvent Create(ConnectionEventKind kind, in ConnectionKey key, ProtocolState state, uint timeoutSeconds, long createdMs)
    {
        var e = new ConnectionEvent { Kind = kind, Key = key };
        e.Entry.Reply = key.InverseTuple;
        e.Entry.State = state;
        e.Entry.TimeoutSeconds = timeoutSeconds;
        e.Entry.CreatedMs = createdMs;
        return e;
    }
}
