using System.Text;

namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>Marks and masters of related connections (FTP data connections) against the real kernel.</summary>
public sealed partial class ConntrackKernelTests
{
    // 10.5.0.1:40000 -> 192.0.2.21:21 (control), 10.5.0.1:40001 -> 192.0.2.21:50123 (its passive data connection).
    private static readonly ConnectionKey FtpControl = ConnectionKey.IPv4(0x0A050001, 0xC0000215, 40000, 21, 6);
    private static readonly ConnectionKey FtpData = ConnectionKey.IPv4(0x0A050001, 0xC0000215, 40001, 50123, 6);

    private static KeyValuePair<ConnectionKey, ConnectionEntry> Established(ConnectionKey key, uint mark = 0, ConnectionKey master = default)
        => new(key, new ConnectionEntry
        {
            Reply = key.InverseTuple,
            State = ProtocolState.TcpEstablished,
            Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed | (master.Family != 0 ? ConnectionStatus.Expected : 0),
            TimeoutSeconds = 3600,
            Mark = mark,
            Master = master,
        });

    /// <summary>The namespace's table read back through the plugin's own dump (a source of another factory: nothing is an echo).</summary>
    private static async Task<Dictionary<ConnectionKey, ConnectionEntry>> DumpAsync(Netns ns, int expected)
    {
        var source = ns.Run(() => new ConntrackFactory().CreateSource(Context()))!;
        var recorder = new RecordingSink();
        await using var running = RunningSource.Start(source, recorder);
        Assert.True(Wait.Until(() => Counter(source, "dumps") == 1 && Counter(source, "announced_new") >= expected, Timeout), "the dump did not announce the committed entries");
        return recorder.Events.Where(e => e.Kind == ConnectionEventKind.New).ToDictionary(e => e.Key, e => e.Entry);
    }

    [NetnsFact]
    public async Task Sink_CommitRelatedBeforeItsMasterInList_KernelLinksMasterAndKeepsMarks()
    {
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        // The related entry first: the sink itself must hold it back until its master is in the kernel.
        var replica = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>
        {
            Established(FtpData, mark: 0x42, master: FtpControl),
            Established(FtpControl, mark: 7),
        };

        sink.Commit(replica);

        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(2, Counter(sink, "committed"));
        Assert.Equal(1, Counter(sink, "related"));
        Assert.Equal(0, Counter(sink, "related_master_missing"));
        Assert.Single(ns.ConntrackList("-p", "tcp", "--mark", "66"), l => l.Contains("dport=50123", StringComparison.Ordinal));
        Assert.Single(ns.ConntrackList("-p", "tcp", "--mark", "7"), l => l.Contains("dport=21", StringComparison.Ordinal));

        var table = await DumpAsync(ns, 2);
        Assert.Equal(FtpControl, table[FtpData].Master);
        Assert.Equal(0x42u, table[FtpData].Mark);
        Assert.True((table[FtpData].Status & ConnectionStatus.Expected) != 0, "the kernel did not take the entry as an expected one");
        Assert.False(table[FtpControl].HasMaster);
        Assert.Equal(7u, table[FtpControl].Mark);
    }

    [NetnsFact]
    public async Task Sink_CommitAgainWithNewMark_MarkUpdatedMasterKept()
    {
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));
        sink.Commit([Established(FtpControl), Established(FtpData, mark: 1, master: FtpControl)]);

        // Existing entries: updated in place (no master on an update: EOPNOTSUPP), marks changed, nothing refused.
        sink.Commit([Established(FtpControl, mark: 5), Established(FtpData, mark: 9, master: FtpControl)]);

        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(2, Counter(sink, "updated"));
        Assert.Equal(0, Counter(sink, "replaced"));
        Assert.Single(ns.ConntrackList("-p", "tcp", "--mark", "9"));
        Assert.Single(ns.ConntrackList("-p", "tcp", "--mark", "5"));
        var table = await DumpAsync(ns, 2);
        Assert.Equal(FtpControl, table[FtpData].Master);

        // A mark cleared on the Active is cleared in the kernel too (an update always carries CTA_MARK).
        sink.Commit([Established(FtpControl, mark: 0), Established(FtpData, mark: 9, master: FtpControl)]);
        Assert.Empty(ns.ConntrackList("-p", "tcp", "--mark", "5"));
        Assert.Equal(0, Counter(sink, "refused"));
    }

    [NetnsFact]
    public async Task Sink_RelatedEntryWhoseMasterIsMissing_CountedAndCreatedWithoutMaster()
    {
        using var ns = Netns.Create();
        var sink = ns.Run(() => new ConntrackFactory().CreateSink(Context()));

        sink.Commit([Established(FtpData, mark: 0x42, master: FtpControl), Tcp(1)]);

        Assert.Equal(1, Counter(sink, "related_master_missing"));
        Assert.Equal(0, Counter(sink, "refused"));
        Assert.Equal(2, Counter(sink, "committed"));
        Assert.Single(ns.ConntrackList("-p", "tcp", "--mark", "66"));
        var table = await DumpAsync(ns, 2);
        Assert.False(table[FtpData].HasMaster);
        Assert.Equal(0x42u, table[FtpData].Mark);
    }

    /// <summary>
    /// A real FTP-like exchange between two namespaces over a veth pair: the server's namespace runs the kernel's FTP
    /// helper (an nftables <c>ct helper</c> object), the server answers PASV with a 227 reply, the client opens the data
    /// connection, and the source in the server's namespace announces that connection with its master.
    /// </summary>
    [SkippableFact]
    public async Task Source_FtpPassiveDataConnectionThroughHelper_AnnouncedWithMasterTuple()
    {
        Skip.If(Netns.SkipReason is not null, Netns.SkipReason);
        using var client = Netns.Create();
        using var server = Netns.Create();
        client.Exec("ip", "link", "add", "csftp0", "type", "veth", "peer", "name", "csftp1", "netns", server.Name);
        client.Exec("ip", "addr", "add", "10.77.0.1/24", "dev", "csftp0");
        client.Exec("ip", "link", "set", "csftp0", "up");
        server.Exec("ip", "addr", "add", "10.77.0.2/24", "dev", "csftp1");
        server.Exec("ip", "link", "set", "csftp1", "up");
        var (code, output) = server.TryExec("nft", "add table inet cs_ftp; "
            + "add ct helper inet cs_ftp ftp-std { type \"ftp\" protocol tcp; }; "
            + "add chain inet cs_ftp pre { type filter hook prerouting priority 0; policy accept; }; "
            + "add rule inet cs_ftp pre tcp dport 21 ct helper set \"ftp-std\"");
        Skip.If(code != 0, $"the kernel has no FTP conntrack helper usable from nftables (ct helper type \"ftp\"): {output.Trim()}");

        var source = server.Run(() => new ConntrackFactory().CreateSource(Context()))!;
        var recorder = new RecordingSink();
        await using var running = RunningSource.Start(source, recorder);
        var sockets = new List<Socket>();
        try
        {
            Assert.True(Wait.Until(() => Counter(source, "dumps") == 1, Timeout), "no initial dump");
            var serverAddress = IPAddress.Parse("10.77.0.2");
            var (control, data) = server.Run(() =>
            {
                var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                c.Bind(new IPEndPoint(serverAddress, 21));
                c.Listen();
                var d = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                d.Bind(new IPEndPoint(serverAddress, 0));
                d.Listen();
                return (c, d);
            });
            sockets.AddRange([control, data]);
            var controlClient = client.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
                s.Connect(new IPEndPoint(serverAddress, 21));
                return s;
            });
            sockets.Add(controlClient);
            var controlServer = control.Accept();
            sockets.Add(controlServer);

            controlServer.Send(Encoding.ASCII.GetBytes("220 ClusterSync test FTP\r\n"));
            Receive(controlClient, "220");
            controlClient.Send(Encoding.ASCII.GetBytes("PASV\r\n"));
            Receive(controlServer, "PASV");
            int port = ((IPEndPoint)data.LocalEndPoint!).Port;
            controlServer.Send(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"227 Entering Passive Mode (10,77,0,2,{port >> 8},{port & 0xFF})\r\n")));
            Receive(controlClient, "227");

            var dataClient = client.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Connect(new IPEndPoint(serverAddress, port));
                return s;
            });
            sockets.Add(dataClient);
            sockets.Add(data.Accept());

            var masterKey = ConnectionKey.IPv4(0x0A4D0001, 0x0A4D0002, (ushort)((IPEndPoint)controlClient.LocalEndPoint!).Port, 21, 6);
            var dataKey = ConnectionKey.IPv4(0x0A4D0001, 0x0A4D0002, (ushort)((IPEndPoint)dataClient.LocalEndPoint!).Port, (ushort)port, 6);
            Assert.True(Wait.Until(() => recorder.Events.Any(e => e.Key == dataKey && e.Kind == ConnectionEventKind.New), Timeout),
                "the data connection was not announced: " + string.Join(", ", ((IDataPlaneStatus)source).GetCounters()));
            var announced = recorder.Events.First(e => e.Key == dataKey && e.Kind == ConnectionEventKind.New);
            Assert.Equal(masterKey, announced.Entry.Master);
            Assert.True((announced.Entry.Status & ConnectionStatus.Expected) != 0);
            Assert.False(recorder.Events.First(e => e.Key == masterKey).Entry.HasMaster);
            Assert.True(Counter(source, "master_seen") >= 1);

            // Updates of the data connection (it reaches ESTABLISHED) keep the master although the kernel names it only once.
            Assert.True(Wait.Until(() => recorder.Events.Any(e => e.Key == dataKey && e.Kind == ConnectionEventKind.Update), Timeout), "no update of the data connection");
            Assert.All(recorder.Events.Where(e => e.Key == dataKey && e.Kind != ConnectionEventKind.Destroy), e => Assert.Equal(masterKey, e.Entry.Master));
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    private static void Receive(Socket socket, string expected)
    {
        var buffer = new byte[512];
        var text = new StringBuilder();
        socket.ReceiveTimeout = 10_000;
        while (!text.ToString().Contains('\n', StringComparison.Ordinal))
        {
            int n = socket.Receive(buffer);
            Assert.True(n > 0, $"the peer closed before '{expected}'");
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.StartsWith(expected, text.ToString(), StringComparison.Ordinal);
    }
}
