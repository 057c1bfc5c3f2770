namespace ClusterSync.Connections;

/// <summary>
/// The reply-direction tuple of a connection. It differs from the inverse of the key when NAT applies.
/// Addresses use the same 2×64-bit layout as <see cref="ConnectionKey"/> (IPv4-mapped for IPv4).
/// </summary>
public readonly record struct ReplyTuple(
    ulong SourceHigh, ulong SourceLow, ulong DestinationHigh, ulong DestinationLow,
    ushort SourcePort, ushort DestinationPort)
{
    // Field by field (the generated member goes through EqualityComparer<T>.Default, slow until tiered up):
    // the codec compares every record's reply tuple with the key's inverse.
    /// <summary>Every field equal.</summary>
    public bool Equals(ReplyTuple other)
        => SourceLow == other.SourceLow && DestinationLow == other.DestinationLow && SourceHigh == other.SourceHigh
            && DestinationHigh == other.DestinationHigh && SourcePort == other.SourcePort && DestinationPort == other.DestinationPort;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(SourceHigh, SourceLow, DestinationHigh, DestinationLow, SourcePort, DestinationPort);
}
