namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>
/// The numbers of netlink, nfnetlink and ctnetlink this plugin uses (linux/netlink.h, linux/netfilter/nfnetlink.h,
/// linux/netfilter/nfnetlink_conntrack.h, linux/netfilter/nf_conntrack_common.h, nf_conntrack_tcp.h), kernel ABI.
/// </summary>
internal static class Nl
{
    public const int AfNetlink = 16;
    public const int NetlinkNetfilter = 12;

    public const int HeaderLength = 16;      // struct nlmsghdr
    public const int NfGenLength = 4;        // struct nfgenmsg
    public const int AttrHeaderLength = 4;   // struct nlattr

    // nlmsg_type of netlink itself.
    public const ushort MsgNoop = 1;
    public const ushort MsgError = 2;
    public const ushort MsgDone = 3;
    public const ushort MsgOverrun = 4;

    // nlmsg_flags.
    public const ushort FRequest = 0x1;
    public const ushort FMulti = 0x2;
    public const ushort FAck = 0x4;
    public const ushort FRoot = 0x100;
    public const ushort FMatch = 0x200;
    public const ushort FDump = FRoot | FMatch;
    public const ushort FExcl = 0x200;
    public const ushort FCreate = 0x400;

    public const ushort AttrNested = 0x8000;      // NLA_F_NESTED
    public const ushort AttrByteOrder = 0x4000;   // NLA_F_NET_BYTEORDER
    public const ushort AttrTypeMask = 0x3FFF;

    // nfnetlink.
    public const byte SubsysCtnetlink = 1;
    public const ushort CtNew = (SubsysCtnetlink << 8) | 0;
    public const ushort CtGet = (SubsysCtnetlink << 8) | 1;
    public const ushort CtDelete = (SubsysCtnetlink << 8) | 2;

    /// <summary>Multicast groups NFNLGRP_CONNTRACK_NEW/UPDATE/DESTROY (1, 2, 3) as the bind bitmask / group ids.</summary>
    public const uint GroupNew = 1;
    public const uint GroupUpdate = 2;
    public const uint GroupDestroy = 3;

    // Socket options.
    public const int SolSocket = 1;
    public const int SoSndbuf = 7;
    public const int SoRcvbuf = 8;
    public const int SoRcvtimeo = 20;
    public const int SoSndbufForce = 32;
    public const int SoRcvbufForce = 33;
    public const int SolNetlink = 270;
    public const int NetlinkAddMembership = 1;
    public const int NetlinkCapAck = 10;

    public const int MsgDontWait = 0x40;

    // errno values (x86-64 / generic Linux).
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EPROTONOSUPPORT = 93;
    public const int EOPNOTSUPP = 95;
    public const int ENOBUFS = 105;
    public const int ETIMEDOUT = 110;

    public static string ErrnoName(int errno) => errno switch
    {
        EPERM => "eperm",
        ENOENT => "enoent",
        EAGAIN => "eagain",
        EACCES => "eacces",
        EBUSY => "ebusy",
        EEXIST => "eexist",
        EINVAL => "einval",
        ENOSPC => "enospc",
        12 => "enomem",
        EOPNOTSUPP => "eopnotsupp",
        ENOBUFS => "enobufs",
        _ => "errno_" + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>ctnetlink attribute numbers (enum ctattr_* of nfnetlink_conntrack.h).</summary>
internal static class Cta
{
    public const ushort TupleOrig = 1;
    public const ushort TupleReply = 2;
    public const ushort Status = 3;
    public const ushort ProtoInfo = 4;
    public const ushort Help = 5;
    public const ushort NatSrc = 6;
    public const ushort Timeout = 7;
    public const ushort Mark = 8;
    public const ushort CountersOrig = 9;
    public const ushort CountersReply = 10;
    public const ushort Use = 11;
    public const ushort Id = 12;
    public const ushort NatDst = 13;
    public const ushort TupleMaster = 14;
    public const ushort Zone = 18;
    public const ushort Timestamp = 20;

    // ctattr_tuple
    public const ushort TupleIp = 1;
    public const ushort TupleProto = 2;
    public const ushort TupleZone = 3;

    // ctattr_ip
    public const ushort IpV4Src = 1;
    public const ushort IpV4Dst = 2;
    public const ushort IpV6Src = 3;
    public const ushort IpV6Dst = 4;

    // ctattr_l4proto
    public const ushort ProtoNum = 1;
    public const ushort ProtoSrcPort = 2;
    public const ushort ProtoDstPort = 3;
    public const ushort ProtoIcmpId = 4;
    public const ushort ProtoIcmpType = 5;
    public const ushort ProtoIcmpCode = 6;
    public const ushort ProtoIcmpv6Id = 7;
    public const ushort ProtoIcmpv6Type = 8;
    public const ushort ProtoIcmpv6Code = 9;

    // ctattr_protoinfo / ctattr_protoinfo_tcp
    public const ushort ProtoInfoTcp = 1;
    public const ushort TcpState = 1;
    public const ushort TcpWscaleOrig = 2;
    public const ushort TcpWscaleReply = 3;
    public const ushort TcpFlagsOrig = 4;
    public const ushort TcpFlagsReply = 5;

    // ctattr_counters
    public const ushort CountersPackets = 1;
    public const ushort CountersBytes = 2;
    public const ushort Counters32Packets = 3;
    public const ushort Counters32Bytes = 4;

    // ctattr_tstamp
    public const ushort TimestampStart = 1;
    public const ushort TimestampStop = 2;

    // ctattr_nat / ctattr_protonat
    public const ushort NatV4MinIp = 1;
    public const ushort NatV4MaxIp = 2;
    public const ushort NatProto = 3;
    public const ushort NatV6MinIp = 4;
    public const ushort NatV6MaxIp = 5;
    public const ushort ProtoNatPortMin = 1;
    public const ushort ProtoNatPortMax = 2;
}

/// <summary>Kernel conntrack status bits (IPS_*) and TCP tracking flags (IP_CT_TCP_FLAG_*).</summary>
internal static class Ips
{
    public const uint Expected = 1u << 0;
    public const uint SeenReply = 1u << 1;
    public const uint Assured = 1u << 2;
    public const uint Confirmed = 1u << 3;
    public const uint SrcNat = 1u << 4;
    public const uint DstNat = 1u << 5;
    public const uint SeqAdjust = 1u << 6;
    public const uint SrcNatDone = 1u << 7;
    public const uint DstNatDone = 1u << 8;
    public const uint Dying = 1u << 9;
    public const uint FixedTimeout = 1u << 10;
    public const uint Template = 1u << 11;

    public const byte TcpFlagCloseInit = 0x04;
    public const byte TcpFlagBeLiberal = 0x08;

    public const byte TcpStateMax = 10;   // TCP_CONNTRACK_MAX (states 0-9)
}
