namespace ClusterSync.Plugins.Conntrack.Tests.Netlink;

/// <summary>Requests the sink builds: byte-exact against what the kernel accepted, and round trips through the parser.</summary>
public sealed class CtRequestTests
{
    private static readonly ConnectionKey Tcp = ConnectionKey.IPv4(0x0A000001, 0xC0A80002, 40000, 443, 6);

    /// <summary>The commit request for (<paramref name="key"/>, <paramref name="entry"/>) written by CtRequests.WriteNew and parsed back.</summary>
    private static CtRecord WriteNewAndParse(in ConnectionKey key, in ConnectionEntry entry)
    {
        Assert.True(ConntrackMapping.TryGetCommit(key, entry, 0, out var r), key.ToString());
        var buffer = new byte[CtRequests.MaxMessageLength];
        var w = new NetlinkWriter(buffer);
        CtRequests.WriteNew(ref w, 1, Nl.FCreate, r);
        var reader = new NetlinkReader(w.Written);
        Assert.True(reader.Next(out var m));
        Assert.True(CtParser.TryParse(m, out var parsed));
        return parsed;
    }

    private static ConnectionEntry Established(in ConnectionKey key, uint timeout = 3600) => new()
    {
        Reply = key.InverseTuple,
        State = ProtocolState.TcpEstablished,
        Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured,
        TimeoutSeconds = timeout,
    };

    [Fact]
    public void WriteNew_CommitOfEstablishedTcp_BytesTheKernelAccepted()
    {
        var fixture = Fixtures.Load("commit-replies.txt");
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, Established(Tcp), 0, out var r));
        var buffer = new byte[1024];
        var w = new NetlinkWriter(buffer);
        CtRequests.WriteNew(ref w, 7, Nl.FCreate | Nl.FExcl | Nl.FAck, r);
        CtRequests.WriteNew(ref w, 8, Nl.FCreate | Nl.FExcl, r);
        Assert.Equal(fixture.Single(f => f.Source == "request").Bytes, w.Written.ToArray());
    }

    [Fact]
    public void TryGetError_KernelReplies_AckAndEexistBySequence()
    {
        var replies = Fixtures.Load("commit-replies.txt").Where(f => f.Source == "reply").Select(f => f.Bytes).ToList();
        var answers = new List<(int Error, uint Sequence)>();
        foreach (var bytes in replies)
        {
            var reader = new NetlinkReader(bytes);
            while (reader.Next(out var m))
            {
                Assert.True(m.TryGetError(out int error, out uint seq));
                answers.Add((error, seq));
            }
        }

        Assert.Equal([(0, 7u), (-Nl.EEXIST, 8u)], answers);
    }

    [Fact]
    public void WriteNew_RoundTrip_ParsesToTheSameConnection()
    {
        var keys = new[]
        {
            Tcp,
            ConnectionKey.IPv6(0x20010DB8_00000000, 1, 0x20010DB8_00000000, 2, 5555, 80, 6, zone: 3),
            ConnectionKey.IPv4(0x0A000001, 0x08080808, 5353, 53, 17),
            ConnectionKey.IPv4(0x0A000001, 0x08080808, 0x4242, 8 << 8, 1),
            ConnectionKey.IPv4(0x0A000001, 0x08080808, 0, 0, 50),
        };
        foreach (var key in keys)
        {
            var entry = Established(key);
            entry.State = key.Protocol switch { 6 => ProtocolState.TcpEstablished, 17 => ProtocolState.UdpReplied, 1 => ProtocolState.IcmpActive, _ => ProtocolState.OtherActive };
            if (key.Protocol == 1)
            {
                entry.Reply = entry.Reply with { SourcePort = key.SourcePort, DestinationPort = 0 };
            }

            var parsed = WriteNewAndParse(key, entry);
            Assert.True(ConntrackMapping.TryGetKey(parsed, out var back));
            Assert.Equal(key, back);
            Assert.True(ConntrackMapping.TryGetEntry(parsed, back, ProtocolState.None, 0, out var e, out _));
            Assert.Equal(entry.Reply, e.Reply);
            Assert.Equal(entry.State, e.State);
            Assert.Equal(3600u, parsed.Timeout);
        }
    }

    [Fact]
    public void WriteNew_RelatedEntryWithMark_RoundTripCarriesMasterAndMark()
    {
        var master = ConnectionKey.IPv4(0x0A000001, 0xC0A80002, 40000, 21, 6, zone: 4);
        var key = ConnectionKey.IPv4(0x0A000001, 0xC0A80002, 40001, 50123, 6, zone: 4);
        var entry = Established(key);
        entry.Mark = 0xC0FFEE;
        entry.Master = master;

        var parsed = WriteNewAndParse(key, entry);

        Assert.True(parsed.HasMaster);
        Assert.True(parsed.HasMark);
        Assert.True(ConntrackMapping.TryGetKey(parsed, out var back));
        Assert.True(ConntrackMapping.TryGetEntry(parsed, back, ProtocolState.None, 0, out var e, out _));
        Assert.Equal(master, e.Master);
        Assert.Equal(0xC0FFEEu, e.Mark);
    }

    [Fact]
    public void TryGetCommit_PlainEntry_NoMasterAndNoZeroMarkOnCreate()
    {
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, Established(Tcp), 0, out var r));

        Assert.False(r.HasMaster);
        Assert.False(r.HasMark);
    }

    [Fact]
    public void TryGetCommit_MasterOfAnotherFamily_NotSent()
    {
        var entry = Established(Tcp);
        entry.Master = ConnectionKey.IPv6(0x20010DB8_00000000, 1, 0x20010DB8_00000000, 2, 5555, 21, 6);

        Assert.True(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out var r));

        Assert.False(r.HasMaster);
    }

    [Fact]
    public void TryGetCommit_Tcp_ConfirmedBeLiberalBothWaysExpectedCleared()
    {
        var entry = Established(Tcp);
        entry.Status |= ConnectionStatus.Expected | ConnectionStatus.Dying | ConnectionStatus.SourceNat | ConnectionStatus.Confirmed;
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out var r));
        Assert.Equal(Ips.Confirmed | Ips.SeenReply | Ips.Assured, r.Status);
        Assert.Equal(3, r.TcpState);
        Assert.Equal(Ips.TcpFlagBeLiberal, r.TcpFlagsOriginal);
        Assert.Equal(Ips.TcpFlagBeLiberal, r.TcpMaskOriginal);
        Assert.Equal(Ips.TcpFlagBeLiberal, r.TcpFlagsReply);
        Assert.False(ConntrackMapping.IsNat(r));

        entry.State = ProtocolState.TcpFinWait;
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out r));
        Assert.Equal(Ips.TcpFlagBeLiberal | Ips.TcpFlagCloseInit, r.TcpFlagsOriginal);

        entry.State = ProtocolState.UdpReplied;   // not a TCP state
        Assert.False(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out _));
    }

    [Fact]
    public void TryGetCommit_NatReply_InverseReplyPlusNatBindings()
    {
        // SNAT (masquerade): 10.0.0.1:40000 -> 192.168.0.2:443 leaves as 203.0.113.9:61000.
        var entry = Established(Tcp);
        entry.Reply = entry.Reply with { DestinationLow = CtTuple.V4MappedLow | 0xCB007109, DestinationPort = 61000 };
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out var r));
        Assert.True(r.NatSource.Present);
        Assert.False(r.NatDestination.Present);
        Assert.Equal(0xCB007109u, (uint)r.NatSource.AddrLo);
        Assert.Equal((ushort)61000, r.NatSource.Port);
        Assert.Equal(Tcp.DestinationLow, r.Reply.SrcLo);    // reply sent = inverse of the original
        Assert.Equal(Tcp.SourceLow, r.Reply.DstLo);

        // DNAT: to 192.168.0.2:443, served by 10.1.1.1:8443.
        entry.Reply = Tcp.InverseTuple with { SourceLow = CtTuple.V4MappedLow | 0x0A010101, SourcePort = 8443 };
        Assert.True(ConntrackMapping.TryGetCommit(Tcp, entry, 0, out r));
        Assert.True(r.NatDestination.Present && !r.NatSource.Present);
        Assert.Equal((ushort)8443, r.NatDestination.Port);
    }

    [Fact]
    public void RemainingTimeout_FromLastUpdate_AtLeastOneSecond()
    {
        var e = new ConnectionEntry { TimeoutSeconds = 120, UpdatedMs = 10_000 };
        Assert.Equal(120u, ConntrackMapping.RemainingTimeout(e, 10_000));
        Assert.Equal(90u, ConntrackMapping.RemainingTimeout(e, 40_000));
        Assert.Equal(1u, ConntrackMapping.RemainingTimeout(e, 999_000));
        Assert.Equal(120u, ConntrackMapping.RemainingTimeout(e with { UpdatedMs = 0 }, 999_000));
    }
}
