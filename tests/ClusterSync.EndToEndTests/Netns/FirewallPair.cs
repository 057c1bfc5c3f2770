namespace ClusterSync.EndToEndTests.Netns;

/// <summary>
/// Two Linux firewalls between a client and a server, built from network namespaces for one test:
/// <code>
///   client 10.201.1.10 ─┐                     ┌─ fw1 c0 10.201.1.1 │ fw1 s0 10.201.2.1 ─┐                     ┌─ server 10.201.2.10
///                       ├─ bridge brc (sw) ───┤        sync0 10.201.3.1 ══ veth ══ sync0 10.201.3.2         ├─ bridge brs (sw) ───┤
///                       │                     └─ fw2 c0 10.201.1.2 │ fw2 s0 10.201.2.2 ─┘                     │
/// </code>
/// Namespaces <c>cse2e-PID-RAND-{cli,srv,fw1,fw2,sw}</c>: <c>sw</c> holds one bridge per side (the client-side and
/// server-side L2 segments both firewalls share), every link is a veth pair created directly inside its namespaces
/// (nothing in the host namespace). The client's and the server's default routes go through fw1; switching to fw2 is
/// one <c>ip route replace</c> on each. Both firewalls forward (<c>ip_forward=1</c>) with a stateful nftables policy:
/// established/related accepted, only a TCP SYN creates state, the rest dropped, <c>nf_conntrack_tcp_loose=0</c> (a
/// mid-stream packet of a connection the firewall does not know is INVALID and dropped). With <c>nat</c> both
/// firewalls source-NAT what leaves toward the server to one shared address, 10.201.9.1 (the cluster's NAT address;
/// a firewall's own interface address would not survive any failover), which the firewalls blackhole so that a
/// reply no conntrack entry de-NATs is dropped quietly. Fw1 is cut off with an nftables netdev table dropping
/// ingress and egress on all its interfaces (links stay up: neighbours are not left waiting on ARP).
/// Disposing kills every process started here and deletes every namespace (and with them every link); namespaces
/// of a test process that no longer runs are removed when the next pair is built.
/// </summary>
internal sealed partial class FirewallPair : IAsyncDisposable
{
    public const string ClientAddress = "10.201.1.10";
    public const string ServerAddress = "10.201.2.10";
    public const string NatAddress = "10.201.9.1";

    private readonly List<NsProcess> _processes = [];
    private readonly List<string> _created = [];
    private bool _disposed;

    private FirewallPair(string prefix, bool nat)
    {
        Prefix = prefix;
        Nat = nat;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public string Prefix { get; }

    public bool Nat { get; }

    public string Client => $"{Prefix}-cli";

    public string Server => $"{Prefix}-srv";

    public string Switch => $"{Prefix}-sw";

    public string Firewall(int n) => $"{Prefix}-fw{n}";

    /// <summary>A firewall's address on the client side (1: 10.201.1.1), the server side (10.201.2.n) and the sync link (10.201.3.n).</summary>
    public static string ClientSide(int fw) => $"10.201.1.{fw}";

    public static string ServerSide(int fw) => $"10.201.2.{fw}";

    public static string SyncAddress(int fw) => $"10.201.3.{fw}";

    public static async Task<FirewallPair> CreateAsync(bool nat)
    {
        await RemoveStaleAsync();
        var pair = new FirewallPair($"cse2e-{Environment.ProcessId}-{Random.Shared.Next(0x10000):x4}", nat);
        try
        {
            await pair.BuildAsync();
            return pair;
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a process inside namespace <paramref name="ns"/>; it is killed when the pair is disposed.</summary>
    public NsProcess Start(string name, string ns, string file, IEnumerable<string> args, Action<string>? onLine = null)
    {
        var p = NsProcess.Start(name, ns, file, args, onLine);
        lock (_processes)
        {
            _processes.Add(p);
        }

        return p;
    }

    /// <summary>Client and server send through firewall <paramref name="fw"/> from now on.</summary>
    public async Task RouteThroughAsync(int fw)
    {
        await Host.MustAsync("ip", "-n", Client, "route", "replace", "default", "via", ClientSide(fw));
        await Host.MustAsync("ip", "-n", Server, "route", "replace", "default", "via", ServerSide(fw));
    }

    /// <summary>Cuts firewall <paramref name="fw"/> off: every frame in or out of its three interfaces is dropped (links stay up).</summary>
    public Task CutOffAsync(int fw)
    {
        var chains = string.Join("\n", new[] { "c0", "s0", "sync0" }.SelectMany(d => new[]
        {
            $"  chain in_{d} {{ type filter hook ingress device \"{d}\" priority -500; policy drop; }}",
            $"  chain out_{d} {{ type filter hook egress device \"{d}\" priority -500; policy drop; }}",
        }));
        return Host.NftAsync(Firewall(fw), $"table netdev cse2e_cut {{\n{chains}\n}}\n");
    }

    /// <summary>The firewall's kernel conntrack table (<c>conntrack -L</c>, one entry per line).</summary>
    public async Task<IReadOnlyList<string>> ConntrackAsync(int fw)
    {
        var (code, output) = await Host.RunAsync("ip", ["netns", "exec", Firewall(fw), "conntrack", "-L", "-p", "tcp"]);
        Assert.True(code == 0, $"conntrack -L in {Firewall(fw)}: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("tcp", StringComparison.Ordinal)).ToList();
    }

    /// <summary>Client ports of the client→server:<paramref name="port"/> connections in the firewall's kernel table.</summary>
    public async Task<HashSet<int>> ConntrackClientPortsAsync(int fw, int port)
    {
        var ports = new HashSet<int>();
        foreach (var line in await ConntrackAsync(fw))
        {
            var m = OriginalTuple().Match(line);
            if (m.Success && m.Groups[1].Value == ClientAddress && m.Groups[2].Value == ServerAddress
                && int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture) == port)
            {
                ports.Add(int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
            }
        }

        return ports;
    }

    /// <summary>Client port → reply-tuple destination of the client→server:<paramref name="port"/> connections in the firewall's kernel table (NAT: the translated source).</summary>
    public async Task<Dictionary<int, string>> ConntrackReplyDestinationsAsync(int fw, int port)
    {
        var result = new Dictionary<int, string>();
        foreach (var line in await ConntrackAsync(fw))
        {
            var tuples = OriginalTuple().Matches(line);
            if (tuples.Count >= 2 && tuples[0].Groups[1].Value == ClientAddress && tuples[0].Groups[2].Value == ServerAddress
                && int.Parse(tuples[0].Groups[4].Value, CultureInfo.InvariantCulture) == port)
            {
                result[int.Parse(tuples[0].Groups[3].Value, CultureInfo.InvariantCulture)] = tuples[1].Groups[2].Value;
            }
        }

        return result;
    }

    private async Task BuildAsync()
    {
        foreach (var ns in new[] { Client, Server, Firewall(1), Firewall(2), Switch })
        {
            await Host.MustAsync("ip", "netns", "add", ns);
            _created.Add(ns);
            await Host.MustAsync("ip", "-n", ns, "link", "set", "lo", "up");
        }

        // One bridge per side in the switch namespace; STP off, no forwarding delay.
        foreach (var br in new[] { "brc", "brs" })
        {
            await Host.MustAsync("ip", "-n", Switch, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0");
            await Host.MustAsync("ip", "-n", Switch, "link", "set", br, "up");
        }

        await PlugAsync(Client, "eth0", "cli", "brc");
        await PlugAsync(Server, "eth0", "srv", "brs");
        for (int fw = 1; fw <= 2; fw++)
        {
            await PlugAsync(Firewall(fw), "c0", $"fw{fw}c", "brc");
            await PlugAsync(Firewall(fw), "s0", $"fw{fw}s", "brs");
        }

        await Host.MustAsync("ip", "-n", Firewall(1), "link", "add", "sync0", "type", "veth", "peer", "name", "sync0", "netns", Firewall(2));

        await AddressAsync(Client, "eth0", $"{ClientAddress}/24");
        await AddressAsync(Server, "eth0", $"{ServerAddress}/24");
        for (int fw = 1; fw <= 2; fw++)
        {
            string ns = Firewall(fw);
            await AddressAsync(ns, "c0", $"{ClientSide(fw)}/24");
            await AddressAsync(ns, "s0", $"{ServerSide(fw)}/24");
            await AddressAsync(ns, "sync0", $"{SyncAddress(fw)}/24");
            await Host.InAsync(ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
            await Host.NftAsync(ns, FirewallRuleset(Nat));
            // The conntrack sysctls exist once the ruleset above has loaded conntrack into this namespace.
            await Host.InAsync(ns, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0");
            if (Nat)
            {
                await Host.MustAsync("ip", "-n", ns, "route", "add", "blackhole", $"{NatAddress}/32");
            }
        }

        await Host.MustAsync("ip", "-n", Client, "route", "add", "default", "via", ClientSide(1));
        await Host.MustAsync("ip", "-n", Server, "route", "add", "default", "via", ServerSide(1));
    }

    /// <summary>The stateful forward policy of both firewalls (and their source NAT with <paramref name="nat"/>).</summary>
    public static string FirewallRuleset(bool nat)
    {
        var rules = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Netns", "forward.nft")) + "\n";
        return nat
            ? rules + $$"""
                table ip cse2e_nat {
                  chain postrouting {
                    type nat hook postrouting priority srcnat; policy accept;
                    oifname "s0" snat ip to {{NatAddress}}
                  }
                }

                """
            : rules;
    }

    private async Task PlugAsync(string ns, string name, string switchPort, string bridge)
    {
        await Host.MustAsync("ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", switchPort, "netns", Switch);
        await Host.MustAsync("ip", "-n", Switch, "link", "set", switchPort, "master", bridge, "up");
        await Host.MustAsync("ip", "-n", ns, "link", "set", name, "up");
    }

    private static async Task AddressAsync(string ns, string dev, string cidr)
    {
        await Host.MustAsync("ip", "-n", ns, "addr", "add", cidr, "dev", dev);
        await Host.MustAsync("ip", "-n", ns, "link", "set", dev, "up");
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        NsProcess[] processes;
        lock (_processes)
        {
            processes = [.. _processes];
        }

        try
        {
            foreach (var p in processes)
            {
                await p.DisposeAsync();
            }
        }
        finally
        {
            // Whatever happened to the processes, the namespaces (and every link in them) go.
            foreach (var ns in _created)
            {
                await DeleteAsync(ns);
            }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Kills whatever still runs in the namespace, then deletes it (its links go with it).</summary>
    private static async Task DeleteAsync(string ns)
    {
        var (_, pids) = await Host.RunAsync("ip", ["netns", "pids", ns]);
        foreach (var pid in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (int.TryParse(pid, CultureInfo.InvariantCulture, out int id))
            {
                try
                {
                    using var p = System.Diagnostics.Process.GetProcessById(id);
                    p.Kill(entireProcessTree: true);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
                {
                }
            }
        }

        await Host.RunAsync("ip", ["netns", "del", ns]);
    }

    /// <summary>Namespaces (and node configuration directories) left by an end-to-end test process that no longer runs (killed before it could clean up).</summary>
    private static async Task RemoveStaleAsync()
    {
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), "cse2e-*-nodes-*"))
        {
            var m = StaleDirectory().Match(Path.GetFileName(dir));
            if (m.Success && int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) is int owner && owner != Environment.ProcessId && !Directory.Exists($"/proc/{owner}"))
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }

        var (code, list) = await Host.RunAsync("ip", ["netns", "list"]);
        if (code != 0)
        {
            return;
        }

        foreach (var line in list.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var m = StaleName().Match(line);
            if (m.Success && int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) is int pid && pid != Environment.ProcessId
                && !Directory.Exists($"/proc/{pid}"))
            {
                await DeleteAsync(m.Groups[1].Value);
            }
        }
    }

    [GeneratedRegex(@"^((?:cse2e|cscmp)-(\d+)-\S+)")]
    private static partial Regex StaleName();

    [GeneratedRegex(@"^cse2e-(\d+)-nodes-")]
    private static partial Regex StaleDirectory();

    [GeneratedRegex(@"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")]
    private static partial Regex OriginalTuple();
}
