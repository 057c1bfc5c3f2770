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

    public NetlinkReader(ReadOnlySpan<byte> buffer)
    {
        _rest = buffer;
        Malformed = false;
    }

    public bool Malformed { get; private set; }

    public bool Next(out NetlinkMessage message)
    {
        message = default;
        if (_rest.IsEmpty)
        {
            return false;
        }

        if (_rest.Length < Nl.HeaderLength)
        {
            Malformed = true;
            _rest = default;
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_rest);
        if (length < Nl.HeaderLength || length > (uint)_rest.Length)
        {
            Malformed = true;
            _rest = default;
            return false;
        }

        message = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(_rest[4..]),
            BinaryPrimitives.ReadUInt16LittleEndian(_rest[6..]),
            BinaryPrimitives.ReadUInt32LittleEndian(_rest[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(_rest[12..]),
            _rest[..(int)length]);
        int advance = Math.Min(_rest.Length, (int)((length + 3) & ~3u));
        _rest = _rest[advance..];
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

    public AttributeReader(ReadOnlySpan<byte> attributes)
    {
        _rest = attributes;
        Malformed = false;
    }

    public bool Malformed { get; private set; }

    public bool Next(out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (_rest.IsEmpty)
        {
            return false;
        }

        if (_rest.Length < Nl.AttrHeaderLength)
        {
            Malformed = true;
            _rest = default;
            return false;
        }

        ushort length = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
        if (length < Nl.AttrHeaderLength || length > _rest.Length)
        {
            Malformed = true;
            _rest = default;
            return false;
        }

        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & Nl.AttrTypeMask);
        value = _rest[Nl.AttrHeaderLength..length];
        _rest = _rest[Math.Min(_rest.Length, (length + 3) & ~3)..];
        return true;
    }
}
