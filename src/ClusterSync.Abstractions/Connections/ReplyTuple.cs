namespace ClusterSync.Connections;

/// <summary>
/// The reply-direction tuple of a connection. It differs from the inverse of the key when NAT applies.
/// Addresses use the same 2×64-bit layout as <see cref="ConnectionKey"/> (IPv4-mapped for IPv4).
/// </summary>
public readonly record struct ReplyTuple(
    ulong SourceHigh, ulong SourceLow, ulong DestinationHigh, ulong DestinationLow,
    ushort SourcePort, ushort DestinationPort);
