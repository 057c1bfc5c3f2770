using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace ClusterSync.Plugins.Conntrack.Netlink;

/// <summary>
/// Writes netlink messages back to back into a caller's buffer (host-order headers, big-endian attribute values,
/// every attribute and message padded to 4 bytes, nests flagged <c>NLA_F_NESTED</c>). The caller checks
/// <see cref="Remaining"/> before each message (<see cref="CtRequests.MaxMessageLength"/>); writing past the end throws.
/// </summary>
internal ref struct NetlinkWriter
{
    private readonly Span<byte> _buffer;
    private int _position;
    private int _messageStart;

    public NetlinkWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
        _messageStart = -1;
    }

    public readonly int Length => _position;

    public readonly int Remaining => _buffer.Length - _position;

    public readonly ReadOnlySpan<byte> Written => _buffer[.._position];

    /// <summary>Starts a netfilter message: nlmsghdr (length filled by <see cref="EndMessage"/>) and nfgenmsg.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void BeginMessage(ushort type, ushort flags, uint sequence, byte family)
    {
        _messageStart = _position;
        var h = _buffer.Slice(_position, Nl.HeaderLength + Nl.NfGenLength);
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);   // port id: the kernel fills in ours
        h[16] = family;
        h[17] = 0;                                              // NFNETLINK_V0
        BinaryPrimitives.WriteUInt16BigEndian(h[18..], 0);      // res_id
        _position += Nl.HeaderLength + Nl.NfGenLength;
    }

    public void EndMessage()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[_messageStart..], (uint)(_position - _messageStart));
        _messageStart = -1;
    }

    /// <summary>Drops the message being written (when it turned out not to be wanted).</summary>
    public void AbandonMessage()
    {
        if (_messageStart >= 0)
        {
            _position = _messageStart;
            _messageStart = -1;
        }
    }

    public int BeginNest(ushort type)
    {
        int start = _position;
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[(_position + 2)..], (ushort)(type | Nl.AttrNested));
        _position += Nl.AttrHeaderLength;
        return start;
    }

    public void EndNest(int start) => BinaryPrimitives.WriteUInt16LittleEndian(_buffer[start..], (ushort)(_position - start));

    public void PutU8(ushort type, byte value) => Put(type, 1)[0] = value;

    public void PutBe16(ushort type, ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Put(type, 2), value);

    public void PutBe32(ushort type, uint value) => BinaryPrimitives.WriteUInt32BigEndian(Put(type, 4), value);

    public void PutBe64(ushort type, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(Put(type, 8), value);

    public void PutBytes(ushort type, ReadOnlySpan<byte> value) => value.CopyTo(Put(type, value.Length));

    /// <summary>Two bytes as they are (struct nf_ct_tcp_flags: flags, mask).</summary>
    public void PutPair(ushort type, byte first, byte second)
    {
        var v = Put(type, 2);
        v[0] = first;
        v[1] = second;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void PutAddress(ushort type, byte family, ulong hi, ulong lo)
    {
        if (family == 6)
        {
            var v = Put(type, 16);
            BinaryPrimitives.WriteUInt64BigEndian(v, hi);
            BinaryPrimitives.WriteUInt64BigEndian(v[8..], lo);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(Put(type, 4), (uint)lo);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Span<byte> Put(ushort type, int length)
    {
        int total = Nl.AttrHeaderLength + length;
        int padded = (total + 3) & ~3;
        var a = _buffer.Slice(_position, padded);
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], type);
        a[total..].Clear();
        _position += padded;
        return a.Slice(Nl.AttrHeaderLength, length);
    }
}

/// <summary>Builds the ctnetlink requests the plugin sends: the table dump, create/update (CT_NEW) and delete.</summary>
internal static class CtRequests
{
    /// <summary>An upper bound of one CT_NEW this plugin builds (IPv6, both tuples, NAT both ways, TCP info): check before each.</summary>
    public const int MaxMessageLength = 512;

    /// <summary><c>IPCTNL_MSG_CT_GET</c> with <c>NLM_F_DUMP</c>: every entry of the namespace's table (both families with 0).</summary>
    public static void WriteDump(ref NetlinkWriter w, uint sequence, byte family = 0)
    {
        w.BeginMessage(Nl.CtGet, Nl.FRequest | Nl.FDump, sequence, family);
        w.EndMessage();
    }

    /// <summary>
    /// <c>IPCTNL_MSG_CT_NEW</c> from <paramref name="r"/>: both tuples, status, timeout, zone, mark, TCP protocol info
    /// (state, flags with their mask) when <see cref="CtRecord.HasTcpState"/>, and the NAT bindings and the master tuple
    /// (CTA_TUPLE_MASTER) when present (only valid with <c>NLM_F_CREATE</c>: the kernel answers NAT or a master on an
    /// existing entry with EOPNOTSUPP).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WriteNew(ref NetlinkWriter w, uint sequence, ushort flags, in CtRecord r)
    {
        w.BeginMessage(Nl.CtNew, (ushort)(Nl.FRequest | flags), sequence, r.L3Family);
        WriteTuple(ref w, Cta.TupleOrig, r.Original);
        WriteTuple(ref w, Cta.TupleReply, r.Reply);
        if (r.HasStatus)
        {
            w.PutBe32(Cta.Status, r.Status);
        }

        if (r.HasTimeout)
        {
            w.PutBe32(Cta.Timeout, r.Timeout);
        }

        if (r.HasZone)
        {
            w.PutBe16(Cta.Zone, r.Zone);
        }

        if (r.HasMark)
        {
            w.PutBe32(Cta.Mark, r.Mark);
        }

        if (r.HasTcpState)
        {
            int info = w.BeginNest(Cta.ProtoInfo);
            int tcp = w.BeginNest(Cta.ProtoInfoTcp);
            w.PutU8(Cta.TcpState, r.TcpState);
            if (r.HasTcpFlags)
            {
                w.PutPair(Cta.TcpFlagsOrig, r.TcpFlagsOriginal, r.TcpMaskOriginal);
                w.PutPair(Cta.TcpFlagsReply, r.TcpFlagsReply, r.TcpMaskReply);
            }

            w.EndNest(tcp);
            w.EndNest(info);
        }

        if (r.HasMaster)
        {
            WriteTuple(ref w, Cta.TupleMaster, r.Master);
        }

        if (r.NatSource.Present)
        {
            WriteNat(ref w, Cta.NatSrc, r.Original.Family, r.NatSource);
        }

        if (r.NatDestination.Present)
        {
            WriteNat(ref w, Cta.NatDst, r.Original.Family, r.NatDestination);
        }

        w.EndMessage();
    }

    /// <summary><c>IPCTNL_MSG_CT_DELETE</c> of the entry with <paramref name="r"/>'s original tuple in its zone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WriteDelete(ref NetlinkWriter w, uint sequence, ushort flags, in CtRecord r)
    {
        w.BeginMessage(Nl.CtDelete, (ushort)(Nl.FRequest | flags), sequence, r.L3Family);
        WriteTuple(ref w, Cta.TupleOrig, r.Original);
        if (r.HasZone)
        {
            w.PutBe16(Cta.Zone, r.Zone);
        }

        w.EndMessage();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WriteTuple(ref NetlinkWriter w, ushort type, in CtTuple t)
    {
        int tuple = w.BeginNest(type);
        int ip = w.BeginNest(Cta.TupleIp);
        bool v6 = t.Family == 6;
        w.PutAddress(v6 ? Cta.IpV6Src : Cta.IpV4Src, t.Family, t.SrcHi, t.SrcLo);
        w.PutAddress(v6 ? Cta.IpV6Dst : Cta.IpV4Dst, t.Family, t.DstHi, t.DstLo);
        w.EndNest(ip);
        int proto = w.BeginNest(Cta.TupleProto);
        w.PutU8(Cta.ProtoNum, t.Protocol);
        if (t.HasIcmp)
        {
            bool icmp6 = t.Protocol == 58;
            w.PutBe16(icmp6 ? Cta.ProtoIcmpv6Id : Cta.ProtoIcmpId, t.IcmpId);
            w.PutU8(icmp6 ? Cta.ProtoIcmpv6Type : Cta.ProtoIcmpType, t.IcmpType);
            w.PutU8(icmp6 ? Cta.ProtoIcmpv6Code : Cta.ProtoIcmpCode, t.IcmpCode);
        }
        else if (t.HasPorts)
        {
            w.PutBe16(Cta.ProtoSrcPort, t.SrcPort);
            w.PutBe16(Cta.ProtoDstPort, t.DstPort);
        }

        w.EndNest(proto);
        if (t.HasZone)
        {
            w.PutBe16(Cta.TupleZone, t.Zone);
        }

        w.EndNest(tuple);
    }

    private static void WriteNat(ref NetlinkWriter w, ushort type, byte family, in CtNat nat)
    {
        int n = w.BeginNest(type);
        bool v6 = family == 6;
        w.PutAddress(v6 ? Cta.NatV6MinIp : Cta.NatV4MinIp, family, nat.AddrHi, nat.AddrLo);
        w.PutAddress(v6 ? Cta.NatV6MaxIp : Cta.NatV4MaxIp, family, nat.AddrHi, nat.AddrLo);
        if (nat.HasPort)
        {
            int p = w.BeginNest(Cta.NatProto);
            w.PutBe16(Cta.ProtoNatPortMin, nat.Port);
            w.PutBe16(Cta.ProtoNatPortMax, nat.Port);
            w.EndNest(p);
        }

        w.EndNest(n);
    }
}
