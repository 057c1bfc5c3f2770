namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>
/// One direction's tuple as ctnetlink carries it (CTA_TUPLE_*). IPv4 addresses are held IPv4-mapped
/// (<c>::ffff:a.b.c.d</c> in <see cref="SrcHi"/>/<see cref="SrcLo"/>), as <c>ConnectionKey</c> holds them.
/// </summary>
internal struct CtTuple
{
    public const ulong V4MappedLow = 0x0000_FFFF_0000_0000UL;

    /// <summary>4 or 6 (from the address attributes); 0 when none was present.</summary>
    public byte Family;
    public ulong SrcHi;
    public ulong SrcLo;
    public ulong DstHi;
    public ulong DstLo;
    public byte Protocol;
    public bool HasProtocol;
    public ushort SrcPort;
    public ushort DstPort;
    public bool HasPorts;
    public ushort IcmpId;
    public byte IcmpType;
    public byte IcmpCode;
    public bool HasIcmp;
    public ushort Zone;
    public bool HasZone;
    private byte _addresses;   // bit 0: source seen, bit 1: destination seen

    public readonly bool HasAddresses => _addresses == 3;

    public readonly uint SrcV4 => (uint)SrcLo;

    public readonly uint DstV4 => (uint)DstLo;

    internal void SetSource(byte family, ulong hi, ulong lo)
    {
        Family = family;
        SrcHi = hi;
        SrcLo = lo;
        _addresses |= 1;
    }

    internal void SetDestination(byte family, ulong hi, ulong lo)
    {
        Family = family;
        DstHi = hi;
        DstLo = lo;
        _addresses |= 2;
    }

    /// <summary>A tuple with every field set (for building requests).</summary>
    public static CtTuple Create(byte family, ulong srcHi, ulong srcLo, ulong dstHi, ulong dstLo, byte protocol, ushort srcPort, ushort dstPort)
    {
        var t = new CtTuple { Protocol = protocol, HasProtocol = true, SrcPort = srcPort, DstPort = dstPort, HasPorts = true };
        t.SetSource(family, srcHi, srcLo);
        t.SetDestination(family, dstHi, dstLo);
        return t;
    }
}

/// <summary>A NAT binding to request on create (CTA_NAT_SRC/CTA_NAT_DST): one address and, optionally, one port.</summary>
internal struct CtNat
{
    public bool Present;
    public ulong AddrHi;
    public ulong AddrLo;
    public ushort Port;
    public bool HasPort;
}

/// <summary>
/// One ctnetlink conntrack message, parsed (events, dump replies) or to be built (CT_NEW, CT_DELETE). A flat struct:
/// parsing fills it in place and allocates nothing.
/// </summary>
internal struct CtRecord
{
    // nlmsghdr / nfgenmsg
    public ushort Type;
    public ushort Flags;
    public uint Sequence;
    /// <summary>nlmsg_pid: for an event, the netlink port id of the socket whose request caused it (0: the kernel's own).</summary>
    public uint PortId;
    /// <summary>nfgen_family: 2 (AF_INET) or 10 (AF_INET6).</summary>
    public byte L3Family;

    public CtTuple Original;
    public bool HasOriginal;
    public CtTuple Reply;
    public bool HasReply;
    public CtTuple Master;
    public bool HasMaster;

    public uint Status;
    public bool HasStatus;
    public uint Timeout;
    public bool HasTimeout;
    public uint Mark;
    public bool HasMark;
    public ushort Zone;
    public bool HasZone;
    /// <summary>The kernel's conntrack id: informational only, never an identity (ids are reused and differ per member).</summary>
    public uint Id;
    public bool HasId;
    public uint Use;

    public byte TcpState;
    public bool HasTcpState;
    public byte TcpFlagsOriginal;
    public byte TcpMaskOriginal;
    public byte TcpFlagsReply;
    public byte TcpMaskReply;
    public bool HasTcpFlags;
    public byte TcpWscaleOriginal;
    public byte TcpWscaleReply;

    public ulong PacketsOriginal;
    public ulong BytesOriginal;
    public ulong PacketsReply;
    public ulong BytesReply;
    public bool HasCounters;

    /// <summary>CTA_TIMESTAMP_START/STOP: nanoseconds since the Unix epoch (with <c>nf_conntrack_timestamp=1</c>).</summary>
    public ulong StartNs;
    public ulong StopNs;
    public bool HasTimestamp;

    // Only for building a CT_NEW that creates an entry.
    public CtNat NatSource;
    public CtNat NatDestination;

    public readonly bool IsDelete => Type == Nl.CtDelete;

    public readonly bool IsNew => Type == Nl.CtNew;
}
