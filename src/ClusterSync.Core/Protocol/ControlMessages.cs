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

/// <summary>The digest of one key range: live entries and the XOR of their (key, version) hashes.</summary>
internal readonly record struct RangeDigest(uint Count, ulong Xor);

/// <summary>
/// Anti-entropy bodies (Protocol/README.md, "Anti-entropy"). A range is (depth, prefix): the keys whose 64-bit range hash
/// starts with the <c>6 × depth</c> bits of <c>prefix</c>; its 64 children split it by the next 6 bits. Every body starts
/// with the target member and the cutoff (only entries last updated at or before it count, so changes in flight do
/// not make equal tables look different).
/// </summary>
internal static class AntiEntropyMessages
{
    public const int Children = 64;
    public const int BitsPerLevel = 6;
    public const int MaxDepth = 9;
    private const int Head = 2 + 8 + 1 + 8;
    public const int DigestSize = Head + (Children * 12);
    public const int RequestSize = Head + 8;

    /// <summary>A root Digest (depth 0) that carries the digest of the live templates after its 64 children: <c>count(4) xor(8)</c>.</summary>
    public const int RootDigestWithTemplatesSize = DigestSize + 12;

    /// <summary>A root DigestRequest that also asks for the live templates: one more byte, 1 (its mask may then be 0).</summary>
    public const int RequestWithTemplatesSize = RequestSize + 1;

    /// <summary>The bytes before the records of a RangeEntries body (<c>head count(2)</c>).</summary>
    public const int EntriesHeadSize = Head + 2;

    private static void WriteHead(Span<byte> dst, ushort target, long cutoffMs, byte depth, ulong prefix)
    {
        BinaryPrimitives.WriteUInt16BigEndian(dst, target);
        BinaryPrimitives.WriteInt64BigEndian(dst[2..], cutoffMs);
        dst[10] = depth;
        BinaryPrimitives.WriteUInt64BigEndian(dst[11..], prefix);
    }

    public static bool TryReadHead(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix)
    {
        target = 0;
        cutoffMs = 0;
        depth = 0;
        prefix = 0;
        if (src.Length < Head)
        {
            return false;
        }

        target = BinaryPrimitives.ReadUInt16BigEndian(src);
        cutoffMs = BinaryPrimitives.ReadInt64BigEndian(src[2..]);
        depth = src[10];
        prefix = BinaryPrimitives.ReadUInt64BigEndian(src[11..]);

        // The prefix has 6 × depth significant bits; a deeper range or stray high bits are malformed.
        return cutoffMs > 0 && depth < MaxDepth && (depth == 0 ? prefix == 0 : prefix >> (BitsPerLevel * depth) == 0);
    }

    /// <summary>
    /// Digest (type 5), Active → Standby: the 64 children of a range; a root digest (depth 0) may carry the digest of the
    /// live templates after them (<paramref name="templates"/>; absent when the member has never held a template).
    /// </summary>
    public static int WriteDigest(Span<byte> dst, ushort target, long cutoffMs, byte depth, ulong prefix, ReadOnlySpan<RangeDigest> children, RangeDigest? templates = null)
    {
        WriteHead(dst, target, cutoffMs, depth, prefix);
        int o = Head;
        for (int i = 0; i < Children; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(dst[o..], children[i].Count);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 4)..], children[i].Xor);
            o += 12;
        }

        if (templates is { } t && depth == 0)
        {
            BinaryPrimitives.WriteUInt32BigEndian(dst[o..], t.Count);
            BinaryPrimitives.WriteUInt64BigEndian(dst[(o + 4)..], t.Xor);
            o += 12;
        }

        return o;
    }

    public static bool TryReadDigest(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix, Span<RangeDigest> children)
        => TryReadDigest(src, out target, out cutoffMs, out depth, out prefix, children, out _);

    /// <summary>Reads a Digest; <paramref name="templates"/> is the template digest of a root digest that carries one.</summary>
    public static bool TryReadDigest(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix, Span<RangeDigest> children,
        out RangeDigest? templates)
    {
        templates = null;
        if ((src.Length != DigestSize && src.Length != RootDigestWithTemplatesSize) || !TryReadHead(src, out target, out cutoffMs, out depth, out prefix)
            || (src.Length == RootDigestWithTemplatesSize && depth != 0))
        {
            target = 0;
            cutoffMs = 0;
            depth = 0;
            prefix = 0;
            return false;
        }

        int o = Head;
        for (int i = 0; i < Children; i++)
        {
            children[i] = new RangeDigest(BinaryPrimitives.ReadUInt32BigEndian(src[o..]), BinaryPrimitives.ReadUInt64BigEndian(src[(o + 4)..]));
            o += 12;
        }

        if (src.Length == RootDigestWithTemplatesSize)
        {
            templates = new RangeDigest(BinaryPrimitives.ReadUInt32BigEndian(src[o..]), BinaryPrimitives.ReadUInt64BigEndian(src[(o + 4)..]));
        }

        return true;
    }

    /// <summary>
    /// DigestRequest (type 6), Standby → Active: the children of a range (bit i: child i) whose digests differ; at the
    /// root, <paramref name="templates"/> also asks for the live templates (a trailing byte 1).
    /// </summary>
    public static int WriteRequest(Span<byte> dst, ushort target, long cutoffMs, byte depth, ulong prefix, ulong mask, bool templates = false)
    {
        WriteHead(dst, target, cutoffMs, depth, prefix);
        BinaryPrimitives.WriteUInt64BigEndian(dst[Head..], mask);
        if (templates && depth == 0)
        {
            dst[RequestSize] = 1;
            return RequestWithTemplatesSize;
        }

        return RequestSize;
    }

    public static bool TryReadRequest(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix, out ulong mask)
        => TryReadRequest(src, out target, out cutoffMs, out depth, out prefix, out mask, out _);

    /// <summary>Reads a DigestRequest; <paramref name="templates"/>: a root request that asks for the live templates (its mask may be 0).</summary>
    public static bool TryReadRequest(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix, out ulong mask, out bool templates)
    {
        mask = 0;
        templates = false;
        if ((src.Length != RequestSize && src.Length != RequestWithTemplatesSize) || !TryReadHead(src, out target, out cutoffMs, out depth, out prefix)
            || (src.Length == RequestWithTemplatesSize && (depth != 0 || src[RequestSize] != 1)))
        {
            target = 0;
            cutoffMs = 0;
            depth = 0;
            prefix = 0;
            return false;
        }

        mask = BinaryPrimitives.ReadUInt64BigEndian(src[Head..]);
        templates = src.Length == RequestWithTemplatesSize;
        return mask != 0 || templates;
    }

    /// <summary>RangeEntries (type 7), Active → Standby: head, count(2), then every counted entry of the range as a Data record.</summary>
    public static void WriteEntriesHead(Span<byte> dst, ushort target, long cutoffMs, byte depth, ulong prefix, ushort count)
    {
        WriteHead(dst, target, cutoffMs, depth, prefix);
        BinaryPrimitives.WriteUInt16BigEndian(dst[Head..], count);
    }

    public static bool TryReadEntriesHead(ReadOnlySpan<byte> src, out ushort target, out long cutoffMs, out byte depth, out ulong prefix, out ushort count)
    {
        count = 0;
        if (src.Length < EntriesHeadSize || !TryReadHead(src, out target, out cutoffMs, out depth, out prefix))
        {
            target = 0;
            cutoffMs = 0;
            depth = 0;
            prefix = 0;
            return false;
        }

        count = BinaryPrimitives.ReadUInt16BigEndian(src[Head..]);
        return true;
    }
}
