namespace ClusterSync.Plugins.Conntrack.Tests.Netlink;

/// <summary>The codec against messages the kernel sent (Fixtures/kernel-events.txt).</summary>
public sealed class CtParserFixtureTests
{
    private const string Events = "kernel-events.txt";

    private static List<CtRecord> Parse(string source)
    {
        var records = new List<CtRecord>();
        foreach (var bytes in Fixtures.Sources(Events, source))
        {
            var reader = new NetlinkReader(bytes);
            while (reader.Next(out var m))
            {
                if (m.Type is Nl.CtNew or Nl.CtDelete)
                {
                    Assert.True(CtParser.TryParse(m, out var r), $"{source} message of type {m.Type:x} did not parse");
                    records.Add(r);
                }
            }

            Assert.False(reader.Malformed);
        }

        return records;
    }

    private static ConnectionKey Key(in CtRecord r)
    {
        Assert.True(ConntrackMapping.TryGetKey(r, out var key));
        return key;
    }

    private static ConnectionEntry Entry(in CtRecord r)
    {
        Assert.True(ConntrackMapping.TryGetEntry(r, Key(r), ProtocolState.None, 1234, out var e, out _));
        return e;
    }

    [Fact]
    public void TryParse_KernelEvents_NewUpdateAndDestroyByTypeAndFlags()
    {
        var events = Parse("event");
        Assert.Equal(19, events.Count);
        Assert.Equal(6, events.Count(e => e.IsNew && (e.Flags & (Nl.FCreate | Nl.FExcl)) == (Nl.FCreate | Nl.FExcl)));
        Assert.Equal(11, events.Count(e => e.IsNew && e.Flags == 0));
        Assert.Equal(2, events.Count(e => e.IsDelete));
        Assert.All(events, e => Assert.True(e.HasOriginal && e.HasReply && e.HasStatus && e.HasId));
    }

    [Fact]
    public void TryParse_TcpNewEvent_TupleStateTimeoutStatus()
    {
        var e = Parse("event")[0];
        var key = Key(e);
        Assert.Equal(ConnectionKey.IPv4(0x7F000001, 0x7F000001, 49570, 8080, 6), key);
        Assert.Equal(2, e.L3Family);
        Assert.Equal(0u, e.PortId);
        Assert.Equal(1, e.TcpState);                         // SYN_SENT
        Assert.Equal(120u, e.Timeout);
        Assert.Equal(Ips.Confirmed | Ips.SrcNatDone | Ips.DstNatDone, e.Status);
        var entry = Entry(e);
        Assert.Equal(ProtocolState.TcpSynSent, entry.State);
        Assert.Equal(key.InverseTuple, entry.Reply);
        Assert.Equal(ConnectionStatus.Confirmed | (ConnectionStatus)0x180, entry.Status);
        Assert.Equal(1234, entry.CreatedMs);                 // no timestamp in a NEW event: the time it was seen
    }

    [Fact]
    public void TryParse_TcpHandshakeUpdates_StatesInOrder()
    {
        var states = Parse("event").Where(e => e.IsNew && Key(e).DestinationPort == 8080 && !e.IsDelete).Select(e => (int)e.TcpState);
        Assert.Equal([1, 2, 3, 8], states);                  // SYN_SENT, SYN_RECV, ESTABLISHED, CLOSE (RST)
        var established = Parse("event")[2];
        Assert.Equal(432_000u, established.Timeout);
        Assert.Equal(Ips.SeenReply | Ips.Assured, established.Status & (Ips.SeenReply | Ips.Assured));
        Assert.Equal(0x23, established.TcpFlagsOriginal);
    }

    [Fact]
    public void TryParse_DnatEntry_ReplyTupleIsTranslated()
    {
        var e = Parse("event")[3];
        var key = Key(e);
        Assert.Equal(ConnectionKey.IPv4(0x0A090909, 0x0A090909, key.SourcePort, 80, 6), key);
        Assert.Equal(Ips.DstNat, e.Status & (Ips.DstNat | Ips.SrcNat));
        var reply = Entry(e).Reply;
        Assert.Equal(CtTuple.V4MappedLow | 0x7F000001, reply.SourceLow);     // 127.0.0.1:8080
        Assert.Equal((ushort)8080, reply.SourcePort);
        Assert.Equal(CtTuple.V4MappedLow | 0x0A090909, reply.DestinationLow);
        Assert.Equal(key.SourcePort, reply.DestinationPort);
    }

    [Fact]
    public void TryParse_Ipv6Entry_FullAddresses()
    {
        var e = Parse("event")[6];
        var key = Key(e);
        Assert.True(key.IsIPv6);
        Assert.Equal(10, e.L3Family);
        Assert.Equal(0UL, key.SourceHigh);
        Assert.Equal(1UL, key.SourceLow);                    // ::1
        Assert.Equal((ushort)8081, key.DestinationPort);
        Assert.Equal(key.InverseTuple, Entry(e).Reply);
    }

    [Fact]
    public void TryParse_UdpAndIcmp_StateAndIcmpFieldsInPorts()
    {
        var events = Parse("event");
        var udp = events[9];
        Assert.Equal((ushort)5353, Key(udp).DestinationPort);
        Assert.Equal(ProtocolState.UdpUnreplied, Entry(udp).State);
        Assert.Equal(30u, udp.Timeout);

        var icmp = events[10];
        Assert.True(icmp.Original.HasIcmp);
        var key = Key(icmp);
        Assert.Equal((ushort)0x1234, key.SourcePort);        // id
        Assert.Equal((ushort)(8 << 8), key.DestinationPort); // echo request, code 0
        Assert.Equal((ushort)0, Entry(icmp).Reply.DestinationPort); // echo reply
        Assert.Equal(ProtocolState.IcmpActive, Entry(icmp).State);
    }

    [Fact]
    public void TryParse_EntryInsertedByConntrackTool_ZoneMarkAndPortId()
    {
        var e = Parse("event")[12];
        Assert.NotEqual(0u, e.PortId);                        // caused by the conntrack tool's socket
        Assert.True(e.HasZone);
        Assert.Equal(7, e.Zone);
        Assert.Equal(42u, e.Mark);
        Assert.Equal(100u, e.Timeout);
        Assert.Equal(ConnectionKey.IPv4(0xC0000201, 0xC6336402, 1000, 53, 17, zone: 7), Key(e));
    }

    [Fact]
    public void TryParse_DestroyEvents_CountersAndStartTimestamp()
    {
        var destroys = Parse("event").Where(e => e.IsDelete).ToList();
        Assert.All(destroys, d => Assert.True(d.HasCounters && d.HasTimestamp && d.StartNs > 1_700_000_000_000_000_000UL));
        Assert.Equal(1UL, destroys[0].PacketsOriginal);
        Assert.Equal(29UL, destroys[0].BytesOriginal);
        Assert.Equal((ushort)80, Key(destroys[1]).DestinationPort);
        Assert.Equal((long)(destroys[0].StartNs / 1_000_000), Entry(destroys[0]).CreatedMs);
    }

    [Fact]
    public void TryParse_DumpReply_EntriesThenDone()
    {
        var request = Fixtures.Sources(Events, "request").Single();
        var built = new byte[64];
        var w = new NetlinkWriter(built);
        CtRequests.WriteDump(ref w, 42);
        Assert.Equal(request, w.Written.ToArray());

        var dump = Parse("dump");
        Assert.Equal(4, dump.Count);
        Assert.All(dump, d => Assert.Equal(42u, d.Sequence));
        Assert.All(dump, d => Assert.Equal(Nl.FMulti, d.Flags));
        Assert.Equal([ProtocolState.TcpTimeWait, ProtocolState.TcpClose, ProtocolState.IcmpActive, ProtocolState.UdpUnreplied], dump.Select(d => Entry(d).State));
        Assert.Equal(7, dump[3].Zone);
        var last = Fixtures.Sources(Events, "dump").Last();
        var reader = new NetlinkReader(last);
        Assert.True(reader.Next(out var done));
        Assert.Equal(Nl.MsgDone, done.Type);
    }

    [Fact]
    public void TryParse_KernelEvents_AllocatesNothing()
    {
        var datagrams = Fixtures.Sources(Events, "event").ToArray();
        long sum = ParseAll(datagrams);   // warm up
        // Steady state: a round that allocates nothing (a few allowed while the runtime tiers the methods up).
        var allocated = new List<long>();
        for (int attempt = 0; attempt < 5 && (allocated.Count == 0 || allocated[^1] != 0); attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                sum += ParseAll(datagrams);
            }

            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(allocated[^1] == 0, "bytes allocated per round: " + string.Join(", ", allocated));
        Assert.True(sum > 0);
    }

    private static long ParseAll(byte[][] datagrams)
    {
        long sum = 0;
        foreach (var d in datagrams)
        {
            var reader = new NetlinkReader(d);
            while (reader.Next(out var m))
            {
                if (CtParser.TryParse(m, out var r) && ConntrackMapping.TryGetKey(r, out var key)
                    && ConntrackMapping.TryGetEntry(r, key, ProtocolState.None, 1, out var e, out _))
                {
                    sum += e.TimeoutSeconds + key.DestinationPort;
                }
            }
        }

        return sum;
    }
}
