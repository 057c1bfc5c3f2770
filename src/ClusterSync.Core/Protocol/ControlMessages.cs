using System.Buffers.Binary;

namespace ClusterSync.Protocol;

/// <summary>An inclusive range of data sequence numbers.</summary>
internal readonly record struct SequenceRange(ulong First, ulong Last);

/// <summary>
/// Ack body: target member, target epoch, cumulative ack (every data sequence up to it received),
/// highest sequence seen, then up to <see cref="MaxRanges"/> NACK ranges of missing sequences.
/// </summary>
internal static class AckMessage
{
    public const int MaxRanges = 64;
    private const int Fixed = 2 + 8 + 8 + 8 + 1;

    public static int Size(int ranges) => Fixed + (16 * ranges);

    public static int Write(Span<byte> dst, ushort target, ulong targetEpoch, ulong cumulative, ulong highest, ReadOnlySpan<SequenceRange> nacks)
    {
        BinaryPrimitives.WriteUInt16BigEndian(dst, target);
        BinaryPrimitives.WriteUInt64BigEndian(dst[2..], targetEpoch);
        BinaryPrimitives.WriteUInt64BigEndian(dst[10..], cumulative);
        BinaryPrimitives.WriteUInt64BigEndian(dst[18..], highest);
        dst[26] = (byte)nacks.Length;
        int o = Fixed;
        foreach (var r in nacks)
        {
            BinaryPrimitives.WriteUInt64BigEndian(dst[o..], r.First);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 8)..], r.Last);
            o += 16;
        }

        return o;
    }

    public static bool TryRead(ReadOnlySpan<byte> src, out ushort target, out ulong targetEpoch, out ulong cumulative, out ulong highest, Span<SequenceRange> nacks, out int nackCount)
    {
        target = 0;
        targetEpoch = cumulative = highest = 0;
        nackCount = 0;
        if (src.Length < Fixed)
        {
            return false;
        }

        target = BinaryPrimitives.ReadUInt16BigEndian(src);
        targetEpoch = BinaryPrimitives.ReadUInt64BigEndian(src[2..]);
        cumulative = BinaryPrimitives.ReadUInt64BigEndian(src[10..]);
        highest = BinaryPrimitives.ReadUInt64BigEndian(src[18..]);
        int n = src[26];
        if (n > MaxRanges || n > nacks.Length || src.Length != Size(n) || highest < cumulative || highest >= PacketHeader.ControlSpace)
        {
            return false;
        }

        int o = Fixed;
        ulong floor = cumulative;
        for (int i = 0; i < n; i++)
        {
            ulong first = BinaryPrimitives.ReadUInt64BigEndian(src[o..]);
            ulong last = BinaryPrimitives.ReadUInt64BigEndian(src[(o + 8)..]);
            if (first <= floor || last < first || last > highest)
            {
                return false;
            }

            nacks[i] = new SequenceRange(first, last);
            floor = last;
            o += 16;
        }

        nackCount = n;
        return true;
    }
}

/// <summary>
/// Heartbeat body: the highest data sequence sent in this epoch, the oldest one still in the resend buffer,
/// the member's state and priority (the control channel's fields; the cluster lifecycle gives them meaning),
/// the sync link it was sent on (its index in the cluster's link list) and a bitmap of the links on which
/// the sender heard the target recently (link health is judged in both directions from it).
/// </summary>
public static class HeartbeatMessage
{
    public const int Size = 8 + 8 + 1 + 1 + 2;

    /// <summary>Sync links a cluster may have (the heard bitmap is one byte).</summary>
    public const int MaxLinks = 8;

    public static int Write(Span<byte> dst, ulong lastSequence, ulong oldestResendable, byte state, byte priority)
        => Write(dst, lastSequence, oldestResendable, state, priority, 0, 0);

    public static int Write(Span<byte> dst, ulong lastSequence, ulong oldestResendable, byte state, byte priority, byte link, byte heardLinks)
    {
        BinaryPrimitives.WriteUInt64BigEndian(dst, lastSequence);
        BinaryPrimitives.WriteUInt64BigEndian(dst[8..], oldestResendable);
        dst[16] = state;
        dst[17] = priority;
        dst[18] = link;
        dst[19] = heardLinks;
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> src, out ulong lastSequence, out ulong oldestResendable, out byte state, out byte priority)
        => TryRead(src, out lastSequence, out oldestResendable, out state, out priority, out _, out _);

    public static bool TryRead(ReadOnlySpan<byte> src, out ulong lastSequence, out ulong oldestResendable, out byte state, out byte priority,
        out byte link, out byte heardLinks)
    {
        lastSequence = oldestResendable = 0;
        state = priority = link = heardLinks = 0;
        if (src.Length != Size || src[18] >= MaxLinks)
        {
            return false;
        }

        lastSequence = BinaryPrimitives.ReadUInt64BigEndian(src);
        oldestResendable = BinaryPrimitives.ReadUInt64BigEndian(src[8..]);
        state = src[16];
        priority = src[17];
        link = src[18];
        heardLinks = src[19];
        return lastSequence < PacketHeader.ControlSpace && oldestResendable <= lastSequence + 1;
    }
}

/// <summary>Gone body: the sender can no longer resend [first, last] to the target; the target needs a resync.</summary>
internal static class GoneMessage
{
    public const int Size = 2 + 8 + 8 + 8;

    public static int Write(Span<byte> dst, ushort target, ulong targetEpoch, SequenceRange range)
    {
        BinaryPrimitives.WriteUInt16BigEndian(dst, target);
        BinaryPrimitives.WriteUInt64BigEndian(dst[2..], targetEpoch);
        BinaryPrimitives.WriteUInt64BigEndian(dst[10..], range.First);
        BinaryPrimitives.WriteUInt64BigEndian(dst[18..], range.Last);
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> src, out ushort target, out ulong targetEpoch, out SequenceRange range)
    {
        target = 0;
        targetEpoch = 0;
        range = default;
        if (src.Length != Size)
        {
            return false;
        }

        target = BinaryPrimitives.ReadUInt16BigEndian(src);
        targetEpoch = BinaryPrimitives.ReadUInt64BigEndian(src[2..]);
        range = new SequenceRange(BinaryPrimitives.ReadUInt64BigEndian(src[10..]), BinaryPrimitives.ReadUInt64BigEndian(src[18..]));
        return range.First != 0 && range.Last >= range.First && range.Last < PacketHeader.ControlSpace;
    }
}
