using System.Buffers.Binary;
using ClusterSync.Connections;
using ClusterSync.Policy;

namespace ClusterSync.Telemetry;

/// <summary>
/// One connection's life as the capture stores it, decoded (what export and training read).
/// <see cref="DelayMs"/> is 0 for "synced at once" and −1 for "never"; <see cref="Score"/> is NaN without a model score.
/// </summary>
public sealed record LifecycleRecord(
    byte Member,
    ConnectionKey Key,
    byte ClassId,
    string Class,
    long StartMs,
    long EndMs,
    ConnectionEndReason EndReason,
    ProtocolState FinalState,
    bool Synced,
    int DelayMs,
    float Score,
    string Reason,
    int Messages,
    bool HasCounters,
    ConnectionCounters Counters)
{
    public double LifetimeSeconds => Math.Max(0, EndMs - StartMs) / 1000.0;

    public string Decision => DelayMs switch { 0 => "now", < 0 => "never", _ => "delay" };
}

/// <summary>
/// The fixed 104-byte little-endian layout of one lifecycle record inside a segment (format version 1): key (40),
/// class, end reason, final state, flags (4), start and end ms (16), delay ms, score, messages (12), counters (32).
/// </summary>
internal static class LifecycleCodec
{
    public const int Version = 1;
    public const int Size = 104;
    private const byte FlagSynced = 1;
    private const byte FlagCounters = 2;

    public static void Write(Span<byte> b, in ConnectionOutcome o)
    {
        var k = o.Key;
        BinaryPrimitives.WriteUInt64LittleEndian(b, k.SourceHigh);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], k.SourceLow);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], k.DestinationHigh);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], k.DestinationLow);
        BinaryPrimitives.WriteUInt16LittleEndian(b[32..], k.SourcePort);
        BinaryPrimitives.WriteUInt16LittleEndian(b[34..], k.DestinationPort);
        BinaryPrimitives.WriteUInt16LittleEndian(b[36..], k.Zone);
        b[38] = k.Protocol;
        b[39] = k.Family;
        b[40] = o.ServiceClass;
        b[41] = (byte)o.Reason;
        b[42] = (byte)o.FinalState;
        b[43] = (byte)((o.Synced ? FlagSynced : 0) | (o.HasCounters ? FlagCounters : 0));
        BinaryPrimitives.WriteInt64LittleEndian(b[44..], o.CreatedMs);
        BinaryPrimitives.WriteInt64LittleEndian(b[52..], o.EndedMs);
        BinaryPrimitives.WriteInt32LittleEndian(b[60..], o.SyncDelayMs);
        BinaryPrimitives.WriteSingleLittleEndian(b[64..], o.Score);
        BinaryPrimitives.WriteInt32LittleEndian(b[68..], o.Messages);
        BinaryPrimitives.WriteUInt64LittleEndian(b[72..], o.Counters.OriginalPackets);
        BinaryPrimitives.WriteUInt64LittleEndian(b[80..], o.Counters.OriginalBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(b[88..], o.Counters.ReplyPackets);
        BinaryPrimitives.WriteUInt64LittleEndian(b[96..], o.Counters.ReplyBytes);
    }

    public static ConnectionOutcome Read(ReadOnlySpan<byte> b)
    {
        ulong sHi = BinaryPrimitives.ReadUInt64LittleEndian(b);
        ulong sLo = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]);
        ulong dHi = BinaryPrimitives.ReadUInt64LittleEndian(b[16..]);
        ulong dLo = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]);
        ushort sport = BinaryPrimitives.ReadUInt16LittleEndian(b[32..]);
        ushort dport = BinaryPrimitives.ReadUInt16LittleEndian(b[34..]);
        ushort zone = BinaryPrimitives.ReadUInt16LittleEndian(b[36..]);
        byte proto = b[38];
        var key = b[39] == 6
            ? ConnectionKey.IPv6(sHi, sLo, dHi, dLo, sport, dport, proto, zone)
            : ConnectionKey.IPv4((uint)sLo, (uint)dLo, sport, dport, proto, zone);
        byte flags = b[43];
        return new ConnectionOutcome(key, b[40], BinaryPrimitives.ReadInt64LittleEndian(b[44..]), BinaryPrimitives.ReadInt64LittleEndian(b[52..]),
            (ConnectionEndReason)b[41], (flags & FlagSynced) != 0, BinaryPrimitives.ReadInt32LittleEndian(b[60..]),
            BinaryPrimitives.ReadSingleLittleEndian(b[64..]), BinaryPrimitives.ReadInt32LittleEndian(b[68..]), (ProtocolState)b[42],
            new ConnectionCounters(BinaryPrimitives.ReadUInt64LittleEndian(b[72..]), BinaryPrimitives.ReadUInt64LittleEndian(b[80..]),
                BinaryPrimitives.ReadUInt64LittleEndian(b[88..]), BinaryPrimitives.ReadUInt64LittleEndian(b[96..])),
            (flags & FlagCounters) != 0);
    }
}
