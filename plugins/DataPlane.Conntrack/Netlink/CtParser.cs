using System.Buffers.Binary;

namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>
/// Parses one ctnetlink conntrack message (an event or a dump reply: <c>IPCTNL_MSG_CT_NEW</c> / <c>CT_DELETE</c>) into a
/// <see cref="CtRecord"/> in place. Allocates nothing and never throws on bad input: a message whose lengths or
/// attribute sizes are wrong is reported as malformed (false). Unknown attributes are skipped, as the kernel adds new ones.
/// </summary>
internal static class CtParser
{
    public static bool TryParse(in NetlinkMessage message, out CtRecord record)
    {
        record = default;
        record.Type = message.Type;
        record.Flags = message.Flags;
        record.Sequence = message.Sequence;
        record.PortId = message.PortId;
        var payload = message.Payload;
        if (payload.Length < Nl.NfGenLength)
        {
            return false;
        }

        record.L3Family = payload[0];
        var attrs = new AttributeReader(payload[Nl.NfGenLength..]);
        while (attrs.Next(out var type, out var v))
        {
            bool ok = type switch
            {
                Cta.TupleOrig => ParseTuple(v, ref record.Original, ref record.HasOriginal),
                Cta.TupleReply => ParseTuple(v, ref record.Reply, ref record.HasReply),
                Cta.TupleMaster => ParseTuple(v, ref record.Master, ref record.HasMaster),
                Cta.Status => Be32(v, ref record.Status, ref record.HasStatus),
                Cta.Timeout => Be32(v, ref record.Timeout, ref record.HasTimeout),
                Cta.Mark => Be32(v, ref record.Mark, ref record.HasMark),
                Cta.Id => Be32(v, ref record.Id, ref record.HasId),
                Cta.Use => Be32Value(v, ref record.Use),
                Cta.Zone => Be16(v, ref record.Zone, ref record.HasZone),
                Cta.ProtoInfo => ParseProtoInfo(v, ref record),
                Cta.CountersOrig => ParseCounters(v, ref record.PacketsOriginal, ref record.BytesOriginal, ref record.HasCounters),
                Cta.CountersReply => ParseCounters(v, ref record.PacketsReply, ref record.BytesReply, ref record.HasCounters),
                Cta.Timestamp => ParseTimestamp(v, ref record),
                _ => true,
            };
            if (!ok)
            {
                return false;
            }
        }

        return !attrs.Malformed;
    }

    private static bool ParseTuple(ReadOnlySpan<byte> value, ref CtTuple tuple, ref bool present)
    {
        present = true;
        var attrs = new AttributeReader(value);
        while (attrs.Next(out var type, out var v))
        {
            bool ok = type switch
            {
                Cta.TupleIp => ParseIp(v, ref tuple),
                Cta.TupleProto => ParseProto(v, ref tuple),
                Cta.TupleZone => Be16(v, ref tuple.Zone, ref tuple.HasZone),
                _ => true,
            };
            if (!ok)
            {
                return false;
            }
        }

        return !attrs.Malformed;
    }

    private static bool ParseIp(ReadOnlySpan<byte> value, ref CtTuple tuple)
    {
        var attrs = new AttributeReader(value);
        while (attrs.Next(out var type, out var v))
        {
            switch (type)
            {
                case Cta.IpV4Src or Cta.IpV4Dst:
                    if (v.Length != 4)
                    {
                        return false;
                    }

                    ulong lo = CtTuple.V4MappedLow | BinaryPrimitives.ReadUInt32BigEndian(v);
                    if (type == Cta.IpV4Src)
                    {
                        tuple.SetSource(4, 0, lo);
                    }
                    else
                    {
                        tuple.SetDestination(4, 0, lo);
                    }

                    break;
                case Cta.IpV6Src or Cta.IpV6Dst:
                    if (v.Length != 16)
                    {
                        return false;
                    }

                    ulong hi = BinaryPrimitives.ReadUInt64BigEndian(v);
                    ulong lo6 = BinaryPrimitives.ReadUInt64BigEndian(v[8..]);
                    if (type == Cta.IpV6Src)
                    {
                        tuple.SetSource(6, hi, lo6);
                    }
                    else
                    {
                        tuple.SetDestination(6, hi, lo6);
                    }

                    break;
            }
        }

        return !attrs.Malformed;
    }

    private static bool ParseProto(ReadOnlySpan<byte> value, ref CtTuple tuple)
    {
        var attrs = new AttributeReader(value);
        bool sport = false, dport = false, id = false, itype = false, icode = false;
        while (attrs.Next(out var type, out var v))
        {
            bool ok = type switch
            {
                Cta.ProtoNum => U8(v, ref tuple.Protocol, ref tuple.HasProtocol),
                Cta.ProtoSrcPort => Be16(v, ref tuple.SrcPort, ref sport),
                Cta.ProtoDstPort => Be16(v, ref tuple.DstPort, ref dport),
                Cta.ProtoIcmpId or Cta.ProtoIcmpv6Id => Be16(v, ref tuple.IcmpId, ref id),
                Cta.ProtoIcmpType or Cta.ProtoIcmpv6Type => U8(v, ref tuple.IcmpType, ref itype),
                Cta.ProtoIcmpCode or Cta.ProtoIcmpv6Code => U8(v, ref tuple.IcmpCode, ref icode),
                _ => true,
            };
            if (!ok)
            {
                return false;
            }
        }

        tuple.HasPorts = sport && dport;
        tuple.HasIcmp = id && itype && icode;
        return !attrs.Malformed;
    }

    private static bool ParseProtoInfo(ReadOnlySpan<byte> value, ref CtRecord record)
    {
        var attrs = new AttributeReader(value);
        while (attrs.Next(out var type, out var v))
        {
            if (type != Cta.ProtoInfoTcp)
            {
                continue;   // DCCP, SCTP: not carried
            }

            var tcp = new AttributeReader(v);
            while (tcp.Next(out var t, out var tv))
            {
                bool ok = t switch
                {
                    Cta.TcpState => U8(tv, ref record.TcpState, ref record.HasTcpState),
                    Cta.TcpWscaleOrig => U8Value(tv, ref record.TcpWscaleOriginal),
                    Cta.TcpWscaleReply => U8Value(tv, ref record.TcpWscaleReply),
                    Cta.TcpFlagsOrig => TcpFlags(tv, ref record.TcpFlagsOriginal, ref record.TcpMaskOriginal, ref record.HasTcpFlags),
                    Cta.TcpFlagsReply => TcpFlags(tv, ref record.TcpFlagsReply, ref record.TcpMaskReply, ref record.HasTcpFlags),
                    _ => true,
                };
                if (!ok)
                {
                    return false;
                }
            }

            if (tcp.Malformed)
            {
                return false;
            }
        }

        return !attrs.Malformed;
    }

    private static bool ParseCounters(ReadOnlySpan<byte> value, ref ulong packets, ref ulong bytes, ref bool present)
    {
        var attrs = new AttributeReader(value);
        while (attrs.Next(out var type, out var v))
        {
            switch (type)
            {
                case Cta.CountersPackets or Cta.CountersBytes when v.Length == 8:
                    (type == Cta.CountersPackets ? ref packets : ref bytes) = BinaryPrimitives.ReadUInt64BigEndian(v);
                    break;
                case Cta.Counters32Packets or Cta.Counters32Bytes when v.Length == 4:
                    (type == Cta.Counters32Packets ? ref packets : ref bytes) = BinaryPrimitives.ReadUInt32BigEndian(v);
                    break;
                case Cta.CountersPackets or Cta.CountersBytes or Cta.Counters32Packets or Cta.Counters32Bytes:
                    return false;
            }
        }

        present = true;
        return !attrs.Malformed;
    }

    private static bool ParseTimestamp(ReadOnlySpan<byte> value, ref CtRecord record)
    {
        var attrs = new AttributeReader(value);
        while (attrs.Next(out var type, out var v))
        {
            if (type is Cta.TimestampStart or Cta.TimestampStop)
            {
                if (v.Length != 8)
                {
                    return false;
                }

                (type == Cta.TimestampStart ? ref record.StartNs : ref record.StopNs) = BinaryPrimitives.ReadUInt64BigEndian(v);
                record.HasTimestamp = true;
            }
        }

        return !attrs.Malformed;
    }

    private static bool Be32(ReadOnlySpan<byte> v, ref uint value, ref bool present)
        => v.Length == 4 && Store(ref value, BinaryPrimitives.ReadUInt32BigEndian(v), ref present);

    private static bool Be32Value(ReadOnlySpan<byte> v, ref uint value)
    {
        bool present = false;
        return Be32(v, ref value, ref present);
    }

    /// <summary>A u8 attribute; only its first byte counts (the kernel pads it).</summary>
    private static bool U8(ReadOnlySpan<byte> v, ref byte value, ref bool present)
        => v.Length >= 1 && Store(ref value, v[0], ref present);

    private static bool U8Value(ReadOnlySpan<byte> v, ref byte value)
    {
        bool present = false;
        return U8(v, ref value, ref present);
    }

    /// <summary>struct nf_ct_tcp_flags: the flags, then the mask of those that count.</summary>
    private static bool TcpFlags(ReadOnlySpan<byte> v, ref byte flags, ref byte mask, ref bool present)
        => v.Length >= 2 && Store(ref flags, v[0], ref present) && Store(ref mask, v[1], ref present);

    private static bool Be16(ReadOnlySpan<byte> v, ref ushort value, ref bool present)
        => v.Length == 2 && Store(ref value, BinaryPrimitives.ReadUInt16BigEndian(v), ref present);

    /// <summary>Stores an attribute's value (its length already checked) and marks it present; true.</summary>
    private static bool Store<T>(ref T field, T value, ref bool present)
    {
        field = value;
        present = true;
        return true;
    }
}
