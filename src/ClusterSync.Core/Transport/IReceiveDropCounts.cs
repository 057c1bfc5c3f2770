namespace ClusterSync.Transport;

/// <summary>
/// Datagrams a transport received but could not hand to the engine: empty ones, and ones larger than its buffer (cut
/// by the kernel). The engine folds them into its drop counters (<c>drops_empty</c>, <c>drops_oversize</c>) on the
/// receiver thread, so every datagram received is accounted for: received = accepted + dropped by reason.
/// </summary>
internal interface IReceiveDropCounts
{
    long EmptyDatagrams { get; }

    long OversizeDatagrams { get; }
}
