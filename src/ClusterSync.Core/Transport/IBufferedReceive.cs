namespace ClusterSync.Transport;

/// <summary>
/// A datagram channel that receives in batches (the UDP transport: <c>recvmmsg</c>, UDP GRO) and can tell whether its
/// next receive returns at once with a datagram it already holds. The engine's receiver then applies the records of
/// consecutive Data datagrams together (one table lock, one prefetch pipeline) and applies them before it would block:
/// a record never waits for a datagram that has not arrived.
/// </summary>
internal interface IBufferedReceive
{
    /// <summary>True when the next receive returns a datagram already received (receiver thread only).</summary>
    bool HasBufferedDatagram { get; }
}
