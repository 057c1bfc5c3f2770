using System.Buffers.Binary;

namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>One netlink message of a received buffer: its header fields and everything after the header.</summary>
internal readonly ref struct NetlinkMessage
{
    public NetlinkMessage(ushort type, ushort flags, uint sequence, uint portId, ReadOnlySpan<byte> message)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Message = message;
    }

    public ushort Type { get; }

    public ushort Flags { get; }

    public uint Sequence { get; }

    public uint PortId { get; }

    /// <summary>The whole message, header included.</summary>
    public ReadOnlySpan<byte> Message { get; }

    public ReadOnlySpan<byte> Payload => Message[Nl.HeaderLength..];

    /// <summary>For an <c>NLMSG_ERROR</c>: the (negative) errno, 0 for an ACK, and the sequence number of the request it answers.</summary>
    public bool TryGetError(out int error, out uint requestSequence)
    {
        error = 0;
        requestSequence = 0;
        var p = Payload;
        if (Type != Nl.MsgError || p.Length < 4)
        {
            return false;
        }

        error = BinaryPrimitives.ReadInt32LittleEndian(p);
        // The request's header follows (its sequence at offset 8 of it); the reply's own sequence is the same.
        requestSequence = p.Length >= 4 + Nl.HeaderLength ? BinaryPrimitives.ReadUInt32LittleEndian(p[(4 + 8)..]) : Sequence;
        return true;
    }
}

/// <summary>
/// Walks the netlink messages of one received buffer (host-order headers, each message 4-byte aligned). A header whose
/// length is shorter than a header or runs past the buffer ends the walk and sets <see cref="Malformed"/>.
/// </summary>
internal ref struct NetlinkReader
{
    private ReadOnlySpan<byte> _rest;
    private bool _malformed;

    public NetlinkReader(ReadOnlySpan<byte> buffer)
    {
        _rest = buffer;
    }

    public readonly bool Malformed => _malformed;

    public bool Next(out NetlinkMessage message)
    {
        message = default;
        if (!TlvWalk.Next(ref _rest, Nl.HeaderLength, wideLength: true, out var m, ref _malformed))
        {
            return false;
        }

        message = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(m[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(m[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(m[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(m[12..]),
            m);
        return true;
    }
}

/// <summary>
/// Walks the attributes (struct nlattr, 4-byte aligned) of a span. A length shorter than the attribute header or past
/// the end ends the walk and sets <see cref="Malformed"/>. Types come without NLA_F_NESTED / NLA_F_NET_BYTEORDER.
/// </summary>
internal ref struct AttributeReader
{
    private ReadOnlySpan<byte> _rest;
    private bool _malformed;

    public AttributeReader(ReadOnlySpan<byte> attributes)
    {
        _rest = attributes;
    }

    public readonly bool Malformed => _malformed;

    public bool Next(out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (!TlvWalk.Next(ref _rest, Nl.AttrHeaderLength, wideLength: false, out var a, ref _malformed))
        {
            return false;
        }

        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(a[2..]) & Nl.AttrTypeMask);
        value = a[Nl.AttrHeaderLength..];
        return true;
    }
}

/// <summary>
/// The walk both readers share: 4-byte aligned elements (messages, attributes), each starting with its host-order
/// length, header included. A length shorter than the header or past the end ends the walk as malformed.
/// </summary>
internal static class TlvWalk
{
    /// <summary>
    /// Splits the next element (header included) off <paramref name="rest"/>: false at the end, or, setting
    /// <paramref name="malformed"/> and ending the walk, on a bad length. The length field is 32 bits wide when
    /// <paramref name="wideLength"/> (struct nlmsghdr), else 16 (struct nlattr).
    /// </summary>
    public static bool Next(scoped ref ReadOnlySpan<byte> rest, int headerLength, bool wideLength, out ReadOnlySpan<byte> element, scoped ref bool malformed)
    {
        element = default;
        if (rest.IsEmpty)
        {
            return false;
        }

        uint length = rest.Length < headerLength ? 0
            : wideLength ? BinaryPrimitives.ReadUInt32LittleEndian(rest) : BinaryPrimitives.ReadUInt16LittleEndian(rest);
        if (length < headerLength || length > (uint)rest.Length)
        {
            malformed = true;
            rest = default;
            return false;
        }

        element = rest[..(int)length];
        rest = rest[Math.Min(rest.Length, (int)((length + 3) & ~3u))..];
        return true;
    }
}
