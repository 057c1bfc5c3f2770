namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

public sealed partial class ConntrackKernelTests
{
    [NetnsFact]
    public async Task Source_LoopbackAndIgnoredNetworks_NotAnnouncedOtherConnectionsAnnounced()
    {
        using var ns = Netns.Create();
        ns.Exec("ip", "addr", "add", "10.77.0.1/32", "dev", "lo");   // a non-loopback address of this host
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context("""{ "ignore": ["192.0.2.0/24"] }""")))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        var sockets = new List<Socket>();
        try
        {
            Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");

            // Ignored first (loopback by default, 192.0.2.0/24 by the setting), then the ones announced: events are read in
            // order, so once the last is announced the ignored ones have been seen.
            var loopback = Connect(ns, IPAddress.Loopback, sockets);
            ns.Exec("conntrack", "-I", "-p", "udp", "-s", "198.51.100.1", "-d", "192.0.2.1", "--sport", "1000", "--dport", "53", "-t", "120");
            var local = Connect(ns, IPAddress.Parse("10.77.0.1"), sockets);
            ns.Exec("conntrack", "-I", "-p", "udp", "-s", "198.51.100.1", "-d", "203.0.113.1", "--sport", "1000", "--dport", "53", "-t", "120");
            var udp = ConnectionKey.IPv4(0xC6336401, 0xCB007101, 1000, 53, 17);
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == udp), Timeout), "the forwarded-like UDP entry was not announced");
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == local && e.Entry.State == ProtocolState.TcpEstablished), Timeout),
                "the connection over 10.77.0.1 was not announced Established");

            Assert.DoesNotContain(sink.Events, e => e.Key == loopback);
            Assert.DoesNotContain(sink.Events, e => e.Key == ConnectionKey.IPv4(0xC6336401, 0xC0000201, 1000, 53, 17));
            Assert.True(Counter(source, "ignored") >= 3, $"ignored {Counter(source, "ignored")}: expected the loopback connection's events and the 192.0.2.1 entry's");
            Assert.Equal(2, Counter(source, "tracked"));
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    [NetnsFact]
    public async Task Source_NodesOwnSyncLinkFlows_NotAnnouncedOtherTrafficOfThoseAddressesAnnounced()
    {
        using var ns = Netns.Create();
        // This member 10.201.3.1 (delta sync 8116/udp, full sync 256/tcp), its peer 10.201.3.2 (the same ports).
        var context = Context() with
        {
            SyncLinkEndpoints =
            [
                new(IPAddress.Parse("10.201.3.1"), 8116, 17), new(IPAddress.Parse("10.201.3.2"), 8116, 17),
                new(IPAddress.Parse("10.201.3.1"), 256, 6), new(IPAddress.Parse("10.201.3.2"), 256, 6),
            ],
        };
        var source = ns.Run(() => new ConntrackFactory().CreateSource(context))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");
        // Ignored: delta sync both ways, full sync pulled from the peer and served to it.
        ns.Exec("conntrack", "-I", "-p", "udp", "-s", "10.201.3.1", "-d", "10.201.3.2", "--sport", "8116", "--dport", "8116", "-t", "120");
        ns.Exec("conntrack", "-I", "-p", "tcp", "-s", "10.201.3.1", "-d", "10.201.3.2", "--sport", "40000", "--dport", "256", "--state", "ESTABLISHED", "-t", "120", "-u", "SEEN_REPLY,ASSURED");
        ns.Exec("conntrack", "-I", "-p", "tcp", "-s", "10.201.3.2", "-d", "10.201.3.1", "--sport", "40001", "--dport", "256", "--state", "ESTABLISHED", "-t", "120", "-u", "SEEN_REPLY,ASSURED");
        // Announced: other traffic of the same addresses (SSH to the peer, DNS over UDP from this member).
        ns.Exec("conntrack", "-I", "-p", "tcp", "-s", "10.201.3.1", "-d", "10.201.3.2", "--sport", "40002", "--dport", "22", "--state", "ESTABLISHED", "-t", "120", "-u", "SEEN_REPLY,ASSURED");
        ns.Exec("conntrack", "-I", "-p", "udp", "-s", "10.201.3.1", "-d", "10.201.3.2", "--sport", "8117", "--dport", "53", "-t", "120");
        var ssh = ConnectionKey.IPv4(0x0AC90301, 0x0AC90302, 40002, 22, 6);
        var dns = ConnectionKey.IPv4(0x0AC90301, 0x0AC90302, 8117, 53, 17);
        Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == dns) && sink.Events.Any(e => e.Key == ssh), Timeout),
            "other traffic of the sync addresses was not announced: " + string.Join(", ", ((DataPlane.IDataPlaneStatus)source).GetCounters()));

        Assert.Equal(2, sink.Events.Select(e => e.Key).Distinct().Count());
        Assert.Equal(3, Counter(source, "sync_link_ignored"));
        Assert.Equal(2, Counter(source, "tracked"));
    }

    /// <summary>A TCP connection to <paramref name="address"/> in the namespace (its three sockets kept in <paramref name="sockets"/>); its key.</summary>
    private static ConnectionKey Connect(Netns ns, IPAddress address, List<Socket> sockets)
    {
        var (listener, client, server) = ns.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(address, 0));
            l.Listen();
            var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            c.Connect(l.LocalEndPoint!);
            return (l, c, l.Accept());
        });
        sockets.AddRange([listener, client, server]);
        uint a = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
        return ConnectionKey.IPv4(a, a, (ushort)((IPEndPoint)client.LocalEndPoint!).Port, (ushort)((IPEndPoint)listener.LocalEndPoint!).Port, 6);
    }
}
