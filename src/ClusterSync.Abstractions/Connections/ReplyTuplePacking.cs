using System.Runtime.CompilerServices;

namespace ClusterSync.Connections;

/// <summary>
/// How a reply tuple is stored in <see cref="ConnectionEntry"/> and in the engine's table entry: the four address words
/// as they are and both ports in one <see cref="uint"/> (source port in the high half). One place for both, each keeping
/// its own field layout; nothing allocates. Compiled into ClusterSync.Abstractions and, linked, into ClusterSync.Core
/// (the contract grants no InternalsVisibleTo).
/// </summary>
internal static class ReplyTuplePacking
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReplyTuple Unpack(ulong sourceHigh, ulong sourceLow, ulong destinationHigh, ulong destinationLow, uint ports)
        => new(sourceHigh, sourceLow, destinationHigh, destinationLow, (ushort)(ports >> 16), (ushort)ports);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pack(in ReplyTuple value, out ulong sourceHigh, out ulong sourceLow, out ulong destinationHigh, out ulong destinationLow, out uint ports)
    {
        sourceHigh = value.SourceHigh;
        sourceLow = value.SourceLow;
        destinationHigh = value.DestinationHigh;
        destinationLow = value.DestinationLow;
        ports = ((uint)value.SourcePort << 16) | value.DestinationPort;
    }
}
