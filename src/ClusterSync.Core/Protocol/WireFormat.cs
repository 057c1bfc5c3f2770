using System.Buffers.Binary;

namespace ClusterSync.Protocol;

/// <summary>Message types of delta-sync protocol v1 (see Protocol/README.md).</summary>
internal enum MessageType : byte
{
    Data = 1,
    Ack = 2,
    Heartbeat = 3,
    Gone = 4,
    /// <summary>Anti-entropy: the digests of a key range's 64 children (Active → Standby).</summary>
    Digest = 5,
    /// <summary>Anti-entropy: the children whose digests differ (Standby → Active).</summary>
    DigestRequest = 6,
    /// <summary>Anti-entropy: every counted entry of a small differing range (Active → Standby).</summary>
    RangeEntries = 7,
}

[Flags]
internal enum HeaderFlags : ushort
{
    None = 0,
    Sealed = 1,
    Known = Sealed,
}

/// <summary>The 24-byte datagram header. It travels in clear and is authenticated as associated data.</summary>
internal readonly record struct PacketHeader(MessageType Type, ushort Sender, HeaderFlags Flags, ulong Epoch, ulong Sequence)
{
    public const int Size = 24;
    public const ushort Magic = 0x4353; // "CS"
    public const byte Version = 1;
    public const ulong ControlSpace = 1UL << 63;

    public bool IsControl => (Sequence & ControlSpace) != 0;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Magic);
        destination[2] = Version;
        destination[3] = (byte)Type;
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Sender);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Epoch);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], Sequence);
    }

    /// <summary>Parses and validates a header; every field is checked before anything else looks at the packet.</summary>
    public static DropReason TryRead(ReadOnlySpan<byte> source, out PacketHeader header)
    {
        header = default;
        if (source.Length < Size)
        {
            return DropReason.Truncated;
        }

        if (BinaryPrimitives.ReadUInt16BigEndian(source) != Magic)
        {
            return DropReason.BadMagic;
        }

        if (source[2] != Version)
        {
            return DropReason.BadVersion;
        }

        var type = (MessageType)source[3];
        if (type is < MessageType.Data or > MessageType.RangeEntries)
        {
            return DropReason.BadType;
        }

        ushort sender = BinaryPrimitives.ReadUInt16BigEndian(source[4..]);
        var flags = (HeaderFlags)BinaryPrimitives.ReadUInt16BigEndian(source[6..]);
        if ((flags & ~HeaderFlags.Known) != 0)
        {
            return DropReason.BadFlags;
        }

        ulong epoch = BinaryPrimitives.ReadUInt64BigEndian(source[8..]);
        ulong seq = BinaryPrimitives.ReadUInt64BigEndian(source[16..]);
        bool control = (seq & ControlSpace) != 0;
        if (sender is 0 or > 255 || epoch == 0 || (seq & ~ControlSpace) == 0 || control != (type != MessageType.Data))
        {
            return DropReason.BadHeader;
        }

        header = new PacketHeader(type, sender, flags, epoch, seq);
        return DropReason.None;
    }
}

/// <summary>Why a received datagram was dropped. Every reason has its own counter.</summary>
public enum DropReason
{
    None = 0,
    Truncated,
    BadMagic,
    BadVersion,
    BadType,
    BadFlags,
    BadHeader,
    UnknownSender,
    InsecureMismatch,
    AuthenticationFailed,
    StaleEpoch,
    Replay,
    OutsideWindow,
    Malformed,
    /// <summary>An empty datagram (no header at all).</summary>
    Empty,
    /// <summary>A datagram larger than the transport carries (cut by the kernel, or longer than the channel's maximum).</summary>
    Oversize,
    /// <summary>A header naming a new epoch of a peer, beyond the peer's key-derivation budget (a flood of forged epochs).</summary>
    DerivationLimited,
    /// <summary>An authentic record whose optional extension block (mark, master) does not parse: the record and the rest of the body are dropped.</summary>
    BadExtension,
    /// <summary>An authentic Data datagram that arrived while the table lock had been busy long enough to fill the apply backlog: not marked received, so it is NACKed and resent like a lost one.</summary>
    ApplyBacklogFull,
}
