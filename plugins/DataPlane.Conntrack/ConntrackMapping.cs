using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Plugins.Conntrack.Netlink;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// Kernel conntrack entries ↔ ClusterSync connections. The key is (zone, original tuple); the reply tuple (NAT) goes to
/// <see cref="ConnectionEntry.Reply"/>; ICMP's id / type / code travel in the ports (source port = id, destination
/// port = type &lt;&lt; 8 | code). Carried: TCP state, status bits 0-11, remaining timeout, start timestamp, counters,
/// the mark (CTA_MARK ↔ <see cref="ConnectionEntry.Mark"/>) and the master of a related connection (CTA_TUPLE_MASTER ↔
/// <see cref="ConnectionEntry.Master"/>, in the entry's zone). Not carried (parsed, not mapped): labels, secmark, helper.
/// Protocols whose kernel tracker keeps state the contract cannot carry (SCTP, DCCP, GRE) are unmappable.
/// </summary>
internal static class ConntrackMapping
{
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte UdpLite = 136;
    public const byte Icmp = 1;
    public const byte Icmpv6 = 58;

    /// <summary>The status bits a commit may set; CONFIRMED is always added, EXPECTED/NAT/DYING/TEMPLATE never sent.</summary>
    private const uint CommitStatusMask = Ips.SeenReply | Ips.Assured | Ips.FixedTimeout;

    /// <summary>Whether ClusterSync can carry connections of this protocol.</summary>
    public static bool IsSupportedProtocol(byte protocol) => protocol is not (132 or 33 or 47);

    private static bool HasPorts(byte protocol) => protocol is Tcp or Udp or UdpLite;

    /// <summary>The connection's key: (zone, original tuple). False when the entry cannot be mapped.</summary>
    public static bool TryGetKey(in CtRecord r, out ConnectionKey key)
    {
        ref readonly var o = ref r.Original;
        if (!r.HasOriginal || (o.Protocol is Icmp or Icmpv6 && (o.Protocol == Icmp) != (o.Family == 4)))
        {
            key = default;
            return false;
        }

        return TryGetTupleKey(o, r.HasZone ? r.Zone : (ushort)0, out key);
    }

    /// <summary>
    /// The master of a related connection (CTA_TUPLE_MASTER) as a key in <paramref name="zone"/> (the kernel looks a
    /// master up in its related entry's zone). False when there is none or it cannot be mapped (its protocol, a tuple
    /// without addresses or ports).
    /// </summary>
    public static bool TryGetMaster(in CtRecord r, ushort zone, out ConnectionKey master)
    {
        master = default;
        return r.HasMaster && TryGetTupleKey(r.Master, zone, out master);
    }

    /// <summary>A tuple as a key in <paramref name="zone"/>; false without addresses, protocol or the ports its protocol needs.</summary>
    private static bool TryGetTupleKey(in CtTuple t, ushort zone, out ConnectionKey key)
    {
        key = default;
        if (!t.HasAddresses || !t.HasProtocol || (t.Family != 4 && t.Family != 6) || !IsSupportedProtocol(t.Protocol)
            || !TryGetPorts(t, t.Protocol, out ushort sport, out ushort dport))
        {
            return false;
        }

        key = t.Family == 4
            ? ConnectionKey.IPv4(t.SrcV4, t.DstV4, sport, dport, t.Protocol, zone)
            : ConnectionKey.IPv6(t.SrcHi, t.SrcLo, t.DstHi, t.DstLo, sport, dport, t.Protocol, zone);
        return true;
    }

    /// <summary>
    /// The key's ports of a tuple of <paramref name="protocol"/>: ICMP id and type/code, the ports of TCP, UDP and
    /// UDP-Lite, none (0) for other protocols. False when the tuple lacks what its protocol needs.
    /// </summary>
    private static bool TryGetPorts(in CtTuple t, byte protocol, out ushort sport, out ushort dport)
    {
        if (protocol is Icmp or Icmpv6)
        {
            sport = t.IcmpId;
            dport = (ushort)((t.IcmpType << 8) | t.IcmpCode);
            return t.HasIcmp;
        }

        if (HasPorts(protocol))
        {
            sport = t.SrcPort;
            dport = t.DstPort;
            return t.HasPorts;
        }

        sport = 0;
        dport = 0;
        return true;
    }

    /// <summary>
    /// Fills <paramref name="entry"/> from a new/update/dump message. <paramref name="knownState"/> is the state last seen
    /// for the connection (an update without CTA_PROTOINFO keeps it). False when the entry cannot be mapped.
    /// </summary>
    public static bool TryGetEntry(in CtRecord r, in ConnectionKey key, ProtocolState knownState, long nowMs, out ConnectionEntry entry, out ConnectionCounters counters)
    {
        entry = default;
        counters = default;
        ref readonly var p = ref r.Reply;
        if (!r.HasReply || !p.HasAddresses || p.Family != r.Original.Family)
        {
            return false;
        }

        if (!TryGetPorts(p, key.Protocol, out ushort rsport, out ushort rdport))
        {
            return false;
        }

        ProtocolState state;
        switch (key.Protocol)
        {
            case Tcp:
                if (r.HasTcpState)
                {
                    if (r.TcpState is 0 or >= Ips.TcpStateMax)
                    {
                        return false;
                    }

                    state = (ProtocolState)r.TcpState;
                }
                else
                {
                    state = knownState is >= ProtocolState.TcpSynSent and <= ProtocolState.TcpSynSent2
                        ? knownState
                        : (r.Status & Ips.SeenReply) != 0 ? ProtocolState.TcpEstablished : ProtocolState.TcpSynSent;
                }

                break;
            case Udp or UdpLite:
                state = (r.Status & Ips.SeenReply) != 0 ? ProtocolState.UdpReplied : ProtocolState.UdpUnreplied;
                break;
            case Icmp or Icmpv6:
                state = ProtocolState.IcmpActive;
                break;
            default:
                state = ProtocolState.OtherActive;
                break;
        }

        entry.Reply = new ReplyTuple(p.SrcHi, p.SrcLo, p.DstHi, p.DstLo, rsport, rdport);
        entry.State = state;
        entry.Status = (ConnectionStatus)(r.Status & (uint)ConnectionStatus.WireMask);
        entry.TimeoutSeconds = r.HasTimeout ? r.Timeout : 0;
        entry.Mark = r.HasMark ? r.Mark : 0; // the kernel leaves out a zero mark unless it just changed
        if (r.HasMaster && TryGetMaster(r, key.Zone, out var master))
        {
            entry.Master = master;
        }
        entry.CreatedMs = r.HasTimestamp && r.StartNs > 0 ? (long)(r.StartNs / 1_000_000) : nowMs;
        if (r.HasCounters)
        {
            counters = new ConnectionCounters(r.PacketsOriginal, r.BytesOriginal, r.PacketsReply, r.BytesReply);
        }

        return true;
    }

    /// <summary>
    /// The CT_NEW that creates <paramref name="key"/>/<paramref name="entry"/> in the kernel: both tuples, the remaining
    /// timeout (at least 1 s), status with CONFIRMED set and EXPECTED cleared, the zone, TCP state with BE_LIBERAL both
    /// ways (CLOSE_INIT too in closing states). A NAT'd entry (reply ≠ inverse of the original) is requested as the
    /// kernel's NAT engine makes one: reply tuple = inverse of the original plus CTA_NAT_SRC/CTA_NAT_DST bindings, from
    /// which the kernel computes the NAT'd reply tuple and sets IPS_SRC_NAT/IPS_DST_NAT (status NAT bits themselves are
    /// ignored by ctnetlink). False when the connection cannot be expressed (protocol, family, state).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool TryGetCommit(in ConnectionKey key, in ConnectionEntry entry, long nowMs, out CtRecord r)
    {
        r = default;
        if ((key.Family != 4 && key.Family != 6) || !IsSupportedProtocol(key.Protocol))
        {
            return false;
        }

        byte family = key.Family;
        var reply = entry.Reply;
        r.L3Family = family == 4 ? (byte)2 : (byte)10;
        r.HasOriginal = r.HasReply = true;
        r.Original = CtTuple.Create(family, key.SourceHigh, key.SourceLow, key.DestinationHigh, key.DestinationLow, key.Protocol, key.SourcePort, key.DestinationPort);
        r.Reply = CtTuple.Create(family, key.DestinationHigh, key.DestinationLow, key.SourceHigh, key.SourceLow, key.Protocol, key.DestinationPort, key.SourcePort);
        bool ports = HasPorts(key.Protocol);
        if (key.Protocol is Icmp or Icmpv6)
        {
            if ((key.Protocol == Icmp) != (family == 4))
            {
                return false;
            }

            byte type = (byte)(key.DestinationPort >> 8);
            byte code = (byte)key.DestinationPort;
            if (!TryInvertIcmpType(key.Protocol, type, out byte replyType))
            {
                return false;
            }

            r.Original.HasPorts = r.Reply.HasPorts = false;
            r.Original.HasIcmp = r.Reply.HasIcmp = true;
            r.Original.IcmpId = r.Reply.IcmpId = key.SourcePort;
            r.Original.IcmpType = type;
            r.Original.IcmpCode = r.Reply.IcmpCode = code;
            r.Reply.IcmpType = replyType;
        }
        else if (!ports)
        {
            r.Original.HasPorts = r.Reply.HasPorts = false;
        }

        // NAT: where the real reply differs from the inverse of the original.
        bool dnat = reply.SourceHigh != key.DestinationHigh || reply.SourceLow != key.DestinationLow || (ports && reply.SourcePort != key.DestinationPort);
        bool snat = reply.DestinationHigh != key.SourceHigh || reply.DestinationLow != key.SourceLow || (ports && reply.DestinationPort != key.SourcePort);
        if (dnat)
        {
            r.NatDestination = new CtNat { Present = true, AddrHi = reply.SourceHigh, AddrLo = reply.SourceLow, Port = reply.SourcePort, HasPort = ports };
        }

        if (snat)
        {
            r.NatSource = new CtNat { Present = true, AddrHi = reply.DestinationHigh, AddrLo = reply.DestinationLow, Port = reply.DestinationPort, HasPort = ports };
        }

        r.Status = ((uint)entry.Status & CommitStatusMask) | Ips.Confirmed;
        r.HasStatus = true;
        r.Mark = entry.Mark;
        r.HasMark = entry.Mark != 0; // a created entry starts with mark 0; an update sends it always (the sink sets that)
        r.HasMaster = entry.HasMaster && TryGetTuple(entry.Master, family, out r.Master);
        r.Timeout = RemainingTimeout(entry, nowMs);
        r.HasTimeout = true;
        if (key.Zone != 0)
        {
            r.Zone = key.Zone;
            r.HasZone = true;
        }

        if (key.Protocol == Tcp)
        {
            if (entry.State is < ProtocolState.TcpSynSent or > ProtocolState.TcpSynSent2)
            {
                return false;
            }

            r.TcpState = (byte)entry.State;
            r.HasTcpState = true;
            r.HasTcpFlags = true;
            bool closing = entry.State is >= ProtocolState.TcpFinWait and <= ProtocolState.TcpClose;
            byte original = closing ? (byte)(Ips.TcpFlagBeLiberal | Ips.TcpFlagCloseInit) : Ips.TcpFlagBeLiberal;
            r.TcpFlagsOriginal = r.TcpMaskOriginal = original;
            r.TcpFlagsReply = r.TcpMaskReply = Ips.TcpFlagBeLiberal;
        }

        return true;
    }

    /// <summary>
    /// The original tuple of <paramref name="key"/> for CTA_TUPLE_MASTER: false when it is of another family than the
    /// related entry (the kernel parses the master in the request's family) or of a protocol the plugin does not carry.
    /// </summary>
    private static bool TryGetTuple(in ConnectionKey key, byte family, out CtTuple t)
    {
        t = default;
        if (key.Family != family || !IsSupportedProtocol(key.Protocol))
        {
            return false;
        }

        t = CtTuple.Create(family, key.SourceHigh, key.SourceLow, key.DestinationHigh, key.DestinationLow, key.Protocol, key.SourcePort, key.DestinationPort);
        if (key.Protocol is Icmp or Icmpv6)
        {
            t.HasPorts = false;
            t.HasIcmp = true;
            t.IcmpId = key.SourcePort;
            t.IcmpType = (byte)(key.DestinationPort >> 8);
            t.IcmpCode = (byte)key.DestinationPort;
        }
        else if (!HasPorts(key.Protocol))
        {
            t.HasPorts = false;
        }

        return true;
    }

    /// <summary>Whether the commit of this entry asks the kernel for NAT (then an existing entry is replaced, not updated).</summary>
    public static bool IsNat(in CtRecord r) => r.NatSource.Present || r.NatDestination.Present;

    /// <summary>Seconds left of the entry's idle timeout at <paramref name="nowMs"/> (its last update + timeout), at least 1.</summary>
    public static uint RemainingTimeout(in ConnectionEntry entry, long nowMs)
    {
        if (entry.UpdatedMs <= 0)
        {
            return Math.Max(1u, entry.TimeoutSeconds);
        }

        long left = (entry.ExpiresAtMs - nowMs + 999) / 1000;
        return (uint)Math.Clamp(left, 1, Math.Max(1u, entry.TimeoutSeconds));
    }

    private static bool TryInvertIcmpType(byte protocol, byte type, out byte inverse)
    {
        int i = protocol == Icmp
            ? type switch { 8 => 0, 0 => 8, 13 => 14, 14 => 13, 15 => 16, 16 => 15, 17 => 18, 18 => 17, _ => -1 }
            : type switch { 128 => 129, 129 => 128, 139 => 140, 140 => 139, _ => -1 };
        inverse = (byte)Math.Max(i, 0);
        return i >= 0;
    }
}
