namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// The plugin against the real kernel, each test in a network namespace of its own (root only; skipped otherwise).
/// One class: these run one after the other.
/// </summary>
public sealed partial class ConntrackKernelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>These tests' connections are on loopback, the only link of a bare namespace: not ignored for them.</summary>
    private const string LoopbackAnnounced = """{ "ignoreLoopback": false }""";

    [NetnsFact]
    public async Task Source_TcpConnectionInNamespace_NewThenDestroyAnnounced()
    {
        using var ns = Netns.Create();
        var factory = new ConntrackFactory();
        var source = ns.Run(() => factory.CreateSource(Context(LoopbackAnnounced)))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");
        var (listener, client, server) = ns.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            l.Listen();
            var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            c.Connect(l.LocalEndPoint!);
            return (l, c, l.Accept());
        });
        using (listener)
        using (client)
        using (server)
        {
            var port = (ushort)((IPEndPoint)listener.LocalEndPoint!).Port;
            var key = ConnectionKey.IPv4(0x7F000001, 0x7F000001, (ushort)((IPEndPoint)client.LocalEndPoint!).Port, port, 6);
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == key && e.Kind == ConnectionEventKind.New), Timeout), "no New for the connection");
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == key && e.Entry.State == ProtocolState.TcpEstablished), Timeout), "never Established");
            var established = sink.Events.Last(e => e.Key == key);
            Assert.Equal(key.InverseTuple, established.Entry.Reply);
            Assert.True(established.Entry.TimeoutSeconds > 400_000);
            Assert.True((established.Entry.Status & ConnectionStatus.Assured) != 0);

            ns.Exec("conntrack", "-D", "-p", "tcp", "--dport", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == key && e.Kind == ConnectionEventKind.Destroy), Timeout), "no Destroy");
            Assert.Single(sink.Events, e => e.Key == key && e.Kind == ConnectionEventKind.New);
        }

        Assert.Equal(0, Counter(source, "malformed"));
        Assert.Equal(0, Counter(source, "unmappable"));
    }

    [NetnsFact]
    public async Task Source_InitialDumpThenEvents_EachConnectionAnnouncedOnce()
    {
        using var ns = Netns.Create();
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context()))!;
        for (int i = 0; i < 3; i++)
        {
            // Before the source runs, after it was created (and subscribed): queued events the dump supersedes.
            ns.Exec("conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "198.51.100.1", "--sport", $"{1000 + i}", "--dport", "53", "-t", "120");
        }

        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "announced_new") == 3, Timeout), "the dump's 3 entries were not announced");
        Assert.Equal(1, Counter(source, "dumps"));
        Assert.Equal(3, Counter(source, "dump_entries"));

        ns.Exec("conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "198.51.100.1", "--sport", "2000", "--dport", "53", "-t", "120");
        ns.Exec("conntrack", "-U", "-s", "192.0.2.1", "-d", "198.51.100.1", "-p", "udp", "--sport", "1001", "--dport", "53", "-m", "7");
        ns.Exec("conntrack", "-D", "-p", "udp", "--sport", "1000", "--dport", "53");
        Assert.True(Wait.Until(() => Counter(source, "announced_destroy") == 1 && Counter(source, "announced_new") == 4 && Counter(source, "announced_update") >= 1, Timeout),
            string.Join(", ", ((IDataPlaneStatus)source).GetCounters()));
        var byKey = sink.Events.GroupBy(e => e.Key).ToDictionary(g => g.Key.SourcePort, g => g.Select(e => e.Kind).ToList());
        Assert.Equal([ConnectionEventKind.New, ConnectionEventKind.Destroy], byKey[1000]);
        Assert.Equal(ConnectionEventKind.New, byKey[1001][0]);
        Assert.Contains(ConnectionEventKind.Update, byKey[1001]);
        Assert.Equal([ConnectionEventKind.New], byKey[2000]);
        Assert.Equal(3, Counter(source, "tracked"));
    }

    [NetnsFact]
    public async Task Source_KernelReportsNoEvents_DestroyFoundByPeriodicResync()
    {
        using var ns = Netns.Create();
        // No events at all (as for an entry created while nobody listened with nf_conntrack_events=2, the default;
        // whether someone listened is global state this test cannot control): only dumps see the table change.
        ns.Exec("sysctl", "-qw", "net.netfilter.nf_conntrack_events=0");
        ns.Exec("conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "198.51.100.1", "--sport", "1000", "--dport", "53", "-t", "120");
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context("""{ "resyncSeconds": 1 }""")))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "announced_new") == 1, Timeout));
        Assert.Equal(0, Counter(source, "events_sysctl"));
        ns.Exec("conntrack", "-D", "-p", "udp", "--sport", "1000", "--dport", "53");
        Assert.True(Wait.Until(() => Counter(source, "announced_destroy") == 1, Timeout), "the destroy was never announced");
        Assert.Equal(0, Counter(source, "events_destroy"));
        Assert.True(Counter(source, "periodic_resyncs") >= 1);
        Assert.Equal(1, Counter(source, "resync_purged"));
    }

    [NetnsFact]
    public void Sink_Commit_EntriesInKernelWithTuplesStateAndTimeout()
    {
        using var ns = Netns.Create();
        ns.Nft("table ip clustersync_nat {\n chain post { type nat hook postrouting priority 100; }\n}\n");   // loads NAT
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var replica = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>();
        for (int i = 0; i < 3000; i++)
        {
            replica.Add(Tcp(i));
        }

        var udpKey = ConnectionKey.IPv4(0x0A020001, 0x08080808, 5353, 53, 17, zone: 5);
        replica.Add(new(udpKey, new ConnectionEntry { Reply = udpKey.InverseTuple, State = ProtocolState.UdpReplied, Status = ConnectionStatus.SeenReply, TimeoutSeconds = 100 }));
        var v6Key = ConnectionKey.IPv6(0x20010DB8_00000000, 1, 0x20010DB8_00000000, 2, 40000, 22, 6);
        replica.Add(new(v6Key, new ConnectionEntry { Reply = v6Key.InverseTuple, State = ProtocolState.TcpFinWait, Status = ConnectionStatus.SeenReply, TimeoutSeconds = 100 }));
        var icmpKey = ConnectionKey.IPv4(0x0A020001, 0x08080808, 0x4242, 8 << 8, 1);
        replica.Add(new(icmpKey, new ConnectionEntry { Reply = icmpKey.InverseTuple with { SourcePort = 0x4242, DestinationPort = 0 }, State = ProtocolState.IcmpActive, TimeoutSeconds = 30 }));
        // Masquerade: 10.3.0.1:40000 -> 198.51.100.7:443 leaves as 203.0.113.1:61000.
        var natKey = ConnectionKey.IPv4(0x0A030001, 0xC6336407, 40000, 443, 6);
        replica.Add(new(natKey, new ConnectionEntry { Reply = natKey.InverseTuple with { DestinationLow = 0x0000_FFFF_CB00_7101, DestinationPort = 61000 }, State = ProtocolState.TcpEstablished, Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured, TimeoutSeconds = 3600 }));

        // Port forward: 198.51.100.9:80 is served by 10.4.0.2:8080.
        var dnatKey = ConnectionKey.IPv4(0xCB007105, 0xC6336409, 50000, 80, 6);
        replica.Add(new(dnatKey, new ConnectionEntry { Reply = dnatKey.InverseTuple with { SourceLow = 0x0000_FFFF_0A04_0002, SourcePort = 8080 }, State = ProtocolState.TcpEstablished, Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured, TimeoutSeconds = 3600 }));

        sink.Commit(replica);

        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(replica.Count, Counter(sink, "committed"));
        Assert.True(Counter(sink, "batches") >= 2, "3,000 entries fit one 256 KiB batch? then the batching is not exercised");
        Assert.Equal(replica.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), ns.Exec("cat", "/proc/sys/net/netfilter/nf_conntrack_count").Trim());

        var tcp = Assert.Single(ns.ConntrackList("-p", "tcp", "--orig-src", "10.1.0.0", "--sport", "1024"));
        Assert.Matches(@"^tcp\s+6 (35\d\d|3600) ESTABLISHED src=10\.1\.0\.0 dst=192\.168\.1\.1 sport=1024 dport=443 .*src=192\.168\.1\.1 dst=10\.1\.0\.0 sport=443 dport=1024 .*\[ASSURED\]", tcp);
        Assert.Matches(@"udp\s+17 (9\d|100) src=10\.2\.0\.1 dst=8\.8\.8\.8 sport=5353 dport=53 .*src=8\.8\.8\.8 dst=10\.2\.0\.1 sport=53 dport=5353 .*zone=5", Assert.Single(ns.ConntrackList("-p", "udp", "-w", "5")));
        Assert.Matches(@"FIN_WAIT src=2001:db8::1 dst=2001:db8::2 sport=40000 dport=22", Assert.Single(ns.ConntrackList("-f", "ipv6")));
        Assert.Matches(@"icmp\s+1 \d+ src=10\.2\.0\.1 dst=8\.8\.8\.8 type=8 code=0 id=16962 .*type=0 code=0 id=16962", Assert.Single(ns.ConntrackList("-p", "icmp")));
        var nat = Assert.Single(ns.ConntrackList("-p", "tcp", "--orig-src", "10.3.0.1"));
        Assert.Matches(@"src=10\.3\.0\.1 dst=198\.51\.100\.7 sport=40000 dport=443 .*src=198\.51\.100\.7 dst=203\.0\.113\.1 sport=443 dport=61000", nat);
        Assert.Single(ns.ConntrackList("-p", "tcp", "--orig-src", "10.3.0.1", "--src-nat"));
        var dnat = Assert.Single(ns.ConntrackList("-p", "tcp", "--orig-src", "203.0.113.5", "--dst-nat"));
        Assert.Matches(@"src=203\.0\.113\.5 dst=198\.51\.100\.9 sport=50000 dport=80 .*src=10\.4\.0\.2 dst=203\.0\.113\.5 sport=8080 dport=50000", dnat);
    }

    [NetnsFact]
    public void Sink_SecondCommit_LastCommitCountsAndTimestampsAreItsOwn()
    {
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        sink.Commit([.. Enumerable.Range(0, 3000).Select(i => Tcp(i))]);
        Assert.Equal(3000, Counter(sink, "last_commit_committed"));

        // The second commit: 1,000 of the same (updated) and 500 new; an unmappable entry is neither committed nor refused.
        var unmappable = ConnectionKey.IPv4(0x0A090001, 0x0A090002, 1, 2, 132);
        long started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        sink.Commit([.. Enumerable.Range(2000, 1500).Select(i => Tcp(i)), new(unmappable, new ConnectionEntry { Reply = unmappable.InverseTuple, TimeoutSeconds = 60 })]);
        long ended = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

        Assert.Equal(1500, Counter(sink, "last_commit_committed"));
        Assert.Equal(0, Counter(sink, "last_commit_refused"));
        Assert.Equal(4500, Counter(sink, "committed"));
        Assert.Equal(2, Counter(sink, "commits"));
        Assert.Equal("3500", ns.Exec("cat", "/proc/sys/net/netfilter/nf_conntrack_count").Trim());
        long start = Counter(sink, "last_commit_started_unix_us"), first = Counter(sink, "last_commit_first_batch_unix_us"), end = Counter(sink, "last_commit_ended_unix_us");
        Assert.True(before < started && started - 1000 <= start, $"started {start}, the second commit was called at {started}");
        Assert.True(start <= first && first <= end && end <= ended + 1000, $"started {start}, first batch {first}, ended {end}, returned by {ended}");
    }

    [NetnsFact]
    public void Sink_CommitOverExistingEntries_UpdatedOrReplacedNeverRefused()
    {
        using var ns = Netns.Create();
        ns.Nft("table ip clustersync_nat {\n chain post { type nat hook postrouting priority 100; }\n}\n");
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var first = Enumerable.Range(0, 200).Select(i => Tcp(i)).ToList();
        sink.Commit(first);
        Assert.Equal(200, Counter(sink, "committed"));

        // The same connections again: 150 closing (an update), 50 no longer ASSURED (the kernel refuses to clear it: EBUSY → replaced).
        var second = first.Select((kv, i) =>
        {
            var e = kv.Value;
            e.State = ProtocolState.TcpFinWait;
            e.TimeoutSeconds = 100;
            if (i >= 150)
            {
                e.Status = ConnectionStatus.SeenReply;
            }

            return new KeyValuePair<ConnectionKey, ConnectionEntry>(kv.Key, e);
        }).ToList();
        sink.Commit(second);

        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(150, Counter(sink, "updated"));
        Assert.Equal(50, Counter(sink, "replaced"));
        Assert.Equal(400, Counter(sink, "committed"));
        var lines = ns.ConntrackList("-p", "tcp");
        Assert.Equal(200, lines.Length);
        Assert.All(lines, l => Assert.Contains(" FIN_WAIT ", l, StringComparison.Ordinal));
        Assert.Equal(150, lines.Count(l => l.Contains("[ASSURED]", StringComparison.Ordinal)));
    }

    [NetnsFact]
    public async Task Sink_CommitOfAnnouncedConnection_CarriesMidStreamTrafficThroughStrictFirewall()
    {
        using var ns = Netns.Create();
        // A stateful policy as on a firewall: only a SYN may create state, a mid-stream packet the table does not know is dropped.
        ns.Exec("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0");
        ns.Nft("""
            table inet clustersync_fw {
              chain out {
                type filter hook output priority 10; policy drop;
                ct state established,related accept
                ct state new tcp flags & (syn | ack) == syn accept
              }
            }
            """);
        var factory = new ConntrackFactory();
        var source = ns.Run(() => factory.CreateSource(Context(LoopbackAnnounced)))!;
        var takeover = ns.Run(() => new ConntrackFactory().CreateSink(Context()));   // the peer that takes over
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout));
        var (listener, client, server) = ns.Run(() =>
        {
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            l.Listen();
            var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            c.Connect(l.LocalEndPoint!);
            return (l, c, l.Accept());
        });
        using (listener)
        using (client)
        using (server)
        {
            var key = ConnectionKey.IPv4(0x7F000001, 0x7F000001, (ushort)((IPEndPoint)client.LocalEndPoint!).Port, (ushort)((IPEndPoint)listener.LocalEndPoint!).Port, 6);
            var buffer = new byte[16];
            client.Send("before"u8);
            Assert.Equal(6, await ReceiveAsync(server, buffer, Timeout));
            Assert.True(Wait.Until(() => sink.Events.Any(e => e.Key == key && e.Entry.State == ProtocolState.TcpEstablished && (e.Entry.Status & ConnectionStatus.Assured) != 0), Timeout), "never announced Established+Assured");
            var announced = sink.Events.Last(e => e.Key == key);

            // The firewall forgets the connection (as a peer that never saw it): mid-stream data is dropped.
            ns.Exec("conntrack", "-D", "-p", "tcp", "--dport", key.DestinationPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
            client.Send("lost"u8);
            Assert.Equal(0, await ReceiveAsync(server, buffer, TimeSpan.FromMilliseconds(700)));

            // The takeover commits what was announced: the retransmission passes, the stream goes on.
            takeover.Commit([new(announced.Key, announced.Entry)]);
            Assert.Equal(0, Counter(takeover, "refused"));
            Assert.Equal(4, await ReceiveAsync(server, buffer, Timeout));
            server.Send("reply"u8);
            Assert.Equal(5, await ReceiveAsync(client, buffer, Timeout));
            Assert.Contains(" ESTABLISHED ", Assert.Single(ns.ConntrackList("-p", "tcp")), StringComparison.Ordinal);
        }
    }

    /// <summary>Bytes received within <paramref name="timeout"/> (0 when nothing arrived).</summary>
    private static async Task<int> ReceiveAsync(Socket socket, byte[] buffer, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    [NetnsFact]
    public void Sink_CommitWithAcks_EveryEntryAcknowledged()
    {
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context("""{ "ack": true, "batchBytes": 65536 }""")));
        sink.Commit([.. Enumerable.Range(0, 2000).Select(i => Tcp(i))]);
        Assert.Equal(2000, Counter(sink, "acks"));
        Assert.Equal(2000, Counter(sink, "committed"));
        Assert.Equal(0, Counter(sink, "refused"));
        Assert.True(Counter(sink, "batches") >= 5);
        Assert.Equal(2000, ns.ConntrackList("-p", "tcp").Length);
    }

    [NetnsFact]
    public async Task Source_EventsOfOwnCommit_NotAnnounced()
    {
        using var ns = Netns.Create();
        var factory = new ConntrackFactory();
        var (source, sink) = ns.Run(() => (factory.CreateSource(Context())!, factory.CreateSink(Context())));
        var recorder = new RecordingSink();
        await using var running = RunningSource.Start(source, recorder);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout));
        var replica = Enumerable.Range(0, 500).Select(i => Tcp(i)).ToList();
        sink.Commit(replica);
        Assert.True(Wait.Until(() => Counter(source, "echo_suppressed") == 500, Timeout), $"echo_suppressed {Counter(source, "echo_suppressed")}");

        // An entry someone else creates is announced: the source is alive and the suppression is by port id.
        ns.Exec("conntrack", "-I", "-p", "udp", "-s", "192.0.2.1", "-d", "198.51.100.1", "--sport", "1000", "--dport", "53", "-t", "120");
        Assert.True(Wait.Until(() => Counter(source, "announced_new") == 1, Timeout));
        Assert.Single(recorder.Events);
        Assert.Equal(501, Counter(source, "tracked"));
    }

    [NetnsFact]
    public async Task Source_ReceiveBufferOverrun_ResyncByDumpPurgesAndAnnounces()
    {
        using var ns = Netns.Create();
        // Another member's commit (a factory of its own, so its events are not our echo) makes the traffic.
        var other = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        var old = Enumerable.Range(0, 10).Select(i => Tcp(i, net: 50)).ToList();
        other.Commit(old);

        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context("""{ "receiveBufferBytes": 4096 }""")))!;
        var sink = new RecordingSink();
        await using var running = RunningSource.Start(source, sink);
        Assert.True(Wait.Until(() => Counter(source, "announced_new") == 10, Timeout), "the dump was not announced");

        // Hold the reader inside Submit, then overrun its socket: 3,000 new entries, and the 10 old ones destroyed.
        sink.Hold();
        other.Commit([Tcp(0, net: 60)]);
        Assert.True(Wait.Until(() => sink.IsHolding, Timeout), "the reader was not held");
        var burst = Enumerable.Range(0, 3000).Select(i => Tcp(i, net: 70)).ToList();
        other.Commit(burst);
        ns.Exec("conntrack", "-D", "-s", "10.50.0.0");
        sink.Release();

        Assert.True(Wait.Until(() => Counter(source, "resyncs") >= 1, Timeout), "no resync after the overrun");
        Assert.True(Counter(source, "enobufs") >= 1);
        var events = sink.Events;
        Assert.All(old, kv => Assert.Contains(events, e => e.Key == kv.Key && e.Kind == ConnectionEventKind.Destroy));
        Assert.True(Counter(source, "resync_purged") >= 1);
        Assert.True(Wait.Until(() => burst.All(kv => sink.Events.Any(e => e.Key == kv.Key && e.Kind == ConnectionEventKind.New)), Timeout), "the burst was not announced after the resync");
        Assert.Equal(3001, Counter(source, "tracked"));
        Assert.Equal(1, sink.Events.Count(e => e.Key == burst[0].Key && e.Kind == ConnectionEventKind.New));
    }
}
