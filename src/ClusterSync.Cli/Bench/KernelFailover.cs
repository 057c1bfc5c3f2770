using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using ClusterSync.Cli.Demo;
using ClusterSync.Node.Configuration;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>bench failover --data-plane conntrack</c>: the failover benchmark's cluster with every member in a network
/// namespace of its own (<see cref="NamespaceNetwork"/>) and the Standbys' data plane the shipped <c>conntrack</c>
/// plugin (loaded by each node through its plugin catalog, sink only: <c>events: false</c>), so the member that takes
/// over commits its replica into its namespace's kernel conntrack table, as a firewall's standby does. Measures when the
/// plugin committed its first and last entry, counts the kernel's table (<c>conntrack -C</c>), and reads both
/// survivors' heartbeat logs (<c>/failover/heard</c>) for the largest gap in the promoting member's heartbeats while it
/// committed. Needs Linux and root. The namespaces are always removed, and <c>nf_conntrack_max</c> (one value for the
/// whole machine on this kernel: read-only inside a namespace) raised only when too small and put back afterwards.
/// </summary>
internal static class KernelFailover
{
    /// <summary>Why this cannot run here (null when it can).</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux (network namespaces, netfilter conntrack)";
        }

        if (Environment.UserName != "root")
        {
            return "needs root (it creates network namespaces, and the conntrack plugin needs CAP_NET_ADMIN)";
        }

        return new[] { "ip", "conntrack" }.FirstOrDefault(t => !new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Any(d => File.Exists(Path.Combine(d, t)))) is { } missing
            ? $"needs the '{missing}' command (Debian packages iproute2, conntrack)"
            : null;
    }

    /// <summary>
    /// Runs the failover in namespaces: <paramref name="options"/> as <c>bench failover</c> builds them; returns the
    /// run and the benchmark's JSON document. Throws <see cref="DemoException"/> when the cluster misbehaved.
    /// </summary>
    public static async Task<(DemoResult Result, Dictionary<string, object> Doc)> MeasureAsync(DemoOptions options, int entries, Action<string> progress, CancellationToken token,
        bool events = false)
    {
        NamespaceNetwork.RemoveStale();
        using var max = ConntrackMax.AtLeast((2L * entries) + 65_536);
        using var network = NamespaceNetwork.Create(events);
        progress($"namespaces {network.Prefix}-1 (member 1, bridge), -2, -3 (members 2 and 3: the conntrack plugin); nf_conntrack_max {max.Value} (was {max.Original})");
        var result = await new DemoRunner(options with { Network = network, CollectHeard = true }, progress).RunAsync(token).ConfigureAwait(false);
        int promoter = result.NewActive;
        int other = promoter == 2 ? 3 : 2;
        long kernelEntries = network.CountKernel(promoter);
        long kernelOther = network.CountKernel(other);
        var doc = Document(result, entries, options, "conntrack");
        var plugin = result.ActiveStatus!.Value.GetProperty("dataPlane").GetProperty("plugin");
        var c = plugin.GetProperty("sinkCounters");
        long Counter(string name) => c.TryGetProperty(name, out var v) ? v.GetInt64() : -1;
        double kill = result.KillUnixMs;
        double firstUs = Counter("last_commit_first_batch_unix_us"), endedUs = Counter("last_commit_ended_unix_us");
        // The last commit's own counts: a member that took over twice (a false failover before the kill, then the
        // real one) committed twice, and the kernel keeps what the first put there and the second did not replace.
        long committed = Counter("last_commit_committed"), refused = Counter("last_commit_refused"), commits = Counter("commits");
        long unmappable = commits == 1 ? Counter("unmappable") : Counter("last_commit_entries") - committed - refused;
        doc["first_commit_ms"] = firstUs > 0 ? Math.Round((firstUs / 1000) - kill, 1) : -1;
        doc["last_commit_ms"] = endedUs > 0 ? Math.Round((endedUs / 1000) - kill, 1) : -1;
        doc["kernel_serving_ms"] = Math.Round(plugin.GetProperty("sinkCommitFinishedUnixMs").GetInt64() - kill, 1);
        doc["kernel_commit_ms"] = Math.Round(Counter("last_commit_us") / 1000.0, 1);
        doc["kernel_entries_per_second"] = Counter("last_commit_entries_per_second");
        doc["kernel_batches"] = Counter("batches");
        doc["kernel_committed"] = committed;
        doc["kernel_refused"] = refused;
        doc["kernel_unmappable"] = unmappable;
        doc["kernel_commit_timeouts"] = plugin.GetProperty("sinkCommitTimeouts").GetInt64();
        doc["kernel_entries"] = kernelEntries;
        doc["kernel_entries_other_survivor"] = kernelOther;
        doc["kernel_commits"] = commits;
        bool verified = (commits == 1 ? kernelEntries == committed : kernelEntries >= committed) && refused == 0 && committed + unmappable == result.Committed;
        doc["verified"] = verified;
        HeartbeatGaps(doc, result, endedUs > 0 ? endedUs / 1000 : result.ActiveFailover!.Value.GetProperty("commitFinishedUnixMs").GetDouble());
        doc["nf_conntrack_max"] = max.Value;
        doc["netns"] = network.Prefix + "-{1,2,3}";
        doc["plugin_events"] = events;
        return (result, doc);
    }

    /// <summary>What <c>bench failover</c> reports for either data plane (the kernel's fields are added by <see cref="MeasureAsync"/>).</summary>
    public static Dictionary<string, object> Document(DemoResult result, int entries, DemoOptions options, string dataPlane)
    {
        double hb = options.HeartbeatInterval.TotalMilliseconds;
        var doc = new Dictionary<string, object>
        {
            ["entries"] = entries,
            ["data_plane"] = dataPlane,
            ["committed"] = result.Committed,
            ["failover_ms"] = result.FailoverMs,
            ["detection_ms"] = result.DetectionMs,
            ["promoting_ms"] = result.PromotingMs,
            ["first_commit_ms"] = result.FirstCommitMs,
            ["last_commit_ms"] = result.LastCommitMs,
            ["inprocess_first_commit_ms"] = result.FirstCommitMs,
            ["inprocess_last_commit_ms"] = result.LastCommitMs,
            ["lost_synced"] = result.Tally.Total.LostSynced,
            ["alive_at_failover"] = result.Tally.Total.Alive,
            ["synced_at_failover"] = result.Tally.Total.Synced,
            ["changes_per_second_at_kill"] = result.ChangesPerSecondAtKill,
            ["heartbeat_ms"] = hb,
            ["dead_interval_ms"] = hb * options.DeadAfterMissedHeartbeats,
            ["premature_takeover"] = result.PrematureTakeover,
            ["extra_takeovers"] = result.ExtraTakeovers,
            ["new_active"] = result.NewActive,
            ["survivors"] = result.SurvivorsSeen,
            ["load_average"] = BenchHost.LoadAverage(),
        };
        GcPauses(doc, result);
        return doc;
    }

    /// <summary>
    /// From both survivors' last <c>/failover</c> (its <c>gc</c> object): <c>max_gc_pause_ms</c>, the longest
    /// garbage-collector pause either survivor saw from the kill on (its pauses of 5 ms and more, stamped with its clock);
    /// <c>new_active_max_gc_pause_ms</c>, the same on the new Active; <c>gc_pauses</c>, per survivor: that, its gen2
    /// collections and total pause since start, and its longest pause since start (the fill included).
    /// </summary>
    public static void GcPauses(Dictionary<string, object> doc, DemoResult result)
    {
        double overall = 0;
        var parts = new List<string>();
        foreach (var d in result.SurvivorFailover)
        {
            if (!d.TryGetProperty("gc", out var gc) || gc.ValueKind != JsonValueKind.Object)
            {
                continue;
            }

            int member = d.GetProperty("memberId").GetInt32();
            double max = 0;
            string what = "none >= 5 ms";
            foreach (var p in gc.GetProperty("recentPauses").EnumerateArray())
            {
                double ms = p.GetProperty("ms").GetDouble();
                if (p.GetProperty("seenUnixMs").GetDouble() >= result.KillUnixMs && ms > max)
                {
                    max = ms;
                    what = string.Create(CultureInfo.InvariantCulture, $"{ms:F1} ms (gen{p.GetProperty("generation").GetInt32()} {p.GetProperty("kind").GetString()}, {p.GetProperty("seenUnixMs").GetDouble() - result.KillUnixMs:F0} ms after the kill)");
                }
            }

            overall = Math.Max(overall, max);
            if (member == result.NewActive)
            {
                doc["new_active_max_gc_pause_ms"] = Math.Round(max, 1);
            }

            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"member {member}: after the kill {what}; {gc.GetProperty("gen2Collections").GetInt32()} gen2, {gc.GetProperty("totalPauseMs").GetDouble():F0} ms paused, longest {gc.GetProperty("maxPauseMs").GetDouble():F1} ms since start"));
        }

        doc["max_gc_pause_ms"] = Math.Round(overall, 1);
        doc["gc_pauses"] = string.Join("; ", parts);
    }

    /// <summary>
    /// From both survivors' heartbeat logs, over [the promoting member announced Promoting, <paramref name="commitEndUnixMs"/>]:
    /// <c>max_heartbeat_gap_ms</c>, the largest gap between two packets the other survivor heard from the promoting
    /// member; <c>max_heartbeat_gap_at_promoter_ms</c>, the same the other way; <c>heartbeat_log_resolution_ms</c>, the
    /// largest spacing of the other survivor's ticks in the window (a gap is exact or longer by at most that: a gap as
    /// long as it is the observer's own stall, not the promoting member's silence); <c>promoter_tick_gap_ms</c>, the
    /// same on the promoting member (its own stall); <c>survivors_declared_dead</c>, how often after the kill a survivor
    /// saw the other one dead; <c>dead_seen</c>, every peer a survivor saw dead from 10 s before the kill on, relative to it.
    /// </summary>
    public static void HeartbeatGaps(Dictionary<string, object> doc, DemoResult result, double commitEndUnixMs)
    {
        if (result.Heard is not { Count: 2 } heard || result.ActiveFailover is not { } active)
        {
            return;
        }

        int promoter = result.NewActive;
        int other = promoter == 2 ? 3 : 2;
        double from = active.GetProperty("promotingUnixMs").GetDouble();
        var atOther = heard[other - 2];
        var atPromoter = heard[promoter - 2];
        doc["max_heartbeat_gap_ms"] = Math.Round(MaxGap(Heard(atOther, promoter), from, commitEndUnixMs), 1);
        doc["max_heartbeat_gap_at_promoter_ms"] = Math.Round(MaxGap(Heard(atPromoter, other), from, commitEndUnixMs), 1);
        doc["heartbeat_log_resolution_ms"] = Math.Round(MaxGap(Doubles(atOther.GetProperty("tickUnixMs")), from, commitEndUnixMs), 1);
        doc["promoter_tick_gap_ms"] = Math.Round(MaxGap(Doubles(atPromoter.GetProperty("tickUnixMs")), from, commitEndUnixMs), 1);
        doc["survivors_declared_dead"] = DeadSince(atOther, promoter, result.KillUnixMs) + DeadSince(atPromoter, other, result.KillUnixMs);
        doc["dead_seen"] = string.Join("; ", heard.SelectMany(log => log.GetProperty("peers").EnumerateArray().SelectMany(p => p.GetProperty("deadSeenUnixMs").EnumerateArray()
            .Where(t => t.GetDouble() >= result.KillUnixMs - 10_000)
            .Select(t => string.Create(CultureInfo.InvariantCulture, $"member {log.GetProperty("memberId").GetInt32()} saw {p.GetProperty("peer").GetInt32()} dead at {t.GetDouble() - result.KillUnixMs:F0} ms")))));
        doc["commit_window_ms"] = Math.Round(commitEndUnixMs - from, 1);
    }

    /// <summary>The largest gap between consecutive times that ends at or after <paramref name="from"/> and starts at or before <paramref name="to"/> (an open gap at <paramref name="to"/> counts to <paramref name="to"/>).</summary>
    public static double MaxGap(double[] times, double from, double to)
    {
        double max = 0;
        for (int i = 0; i + 1 < times.Length; i++)
        {
            if (times[i + 1] >= from && times[i] <= to)
            {
                max = Math.Max(max, times[i + 1] - times[i]);
            }
        }

        if (times.Length > 0 && times[^1] <= to)
        {
            max = Math.Max(max, to - Math.Max(times[^1], from));
        }

        return max;
    }

    private static double[] Heard(JsonElement log, int peer)
        => log.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("peer").GetInt32() == peer).Select(p => Doubles(p.GetProperty("heardUnixMs"))).FirstOrDefault() ?? [];

    private static int DeadSince(JsonElement log, int peer, double since)
        => log.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("peer").GetInt32() == peer)
            .Sum(p => p.GetProperty("deadSeenUnixMs").EnumerateArray().Count(t => t.GetDouble() >= since));

    private static double[] Doubles(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetDouble())];

    /// <summary>
    /// <c>net.netfilter.nf_conntrack_max</c>, raised for the run when below what it needs. On this kernel it is one value
    /// for the machine (read-only inside a network namespace) and each namespace's table is held to it on its own;
    /// disposing puts the old value back, unless something else changed it meanwhile.
    /// </summary>
    private sealed class ConntrackMax : IDisposable
    {
        private const string File = "/proc/sys/net/netfilter/nf_conntrack_max";
        private readonly bool _raised;

        private ConntrackMax(long original, long value, bool raised) => (Original, Value, _raised) = (original, value, raised);

        public long Original { get; }

        public long Value { get; }

        public static ConntrackMax AtLeast(long needed)
        {
            if (!System.IO.File.Exists(File))
            {
                BenchHost.RunWithin(60_000, "modprobe", "nf_conntrack");
            }

            long original = Read();
            if (original >= needed)
            {
                return new ConntrackMax(original, original, raised: false);
            }

            System.IO.File.WriteAllText(File, needed.ToString(CultureInfo.InvariantCulture));
            return new ConntrackMax(original, needed, raised: true);
        }

        public void Dispose()
        {
            if (_raised && Read() == Value)
            {
                System.IO.File.WriteAllText(File, Original.ToString(CultureInfo.InvariantCulture));
            }
        }

        private static long Read() => long.Parse(System.IO.File.ReadAllText(File).Trim(), CultureInfo.InvariantCulture);
    }
}

/// <summary>
/// Three network namespaces, <c>csfo-PID-N-{1,2,3}</c>, one per member: a bridge in member 1's (198.18.0.1/24, the
/// benchmarking range of RFC 2544) and a veth pair from it to each of the others (198.18.0.2, .3), loopback up in each.
/// Members are started under <c>ip netns exec</c> (which execs: the process id is the member's, for the SIGKILL);
/// this process reaches each member's 127.0.0.1 (control endpoint, feed) with sockets created on a thread that entered
/// the namespace. Disposing deletes the namespaces (their links and conntrack tables go with them).
/// </summary>
internal sealed partial class NamespaceNetwork : IDemoNetwork, IDisposable
{
    private const string NamePrefix = "csfo-";
    private const int CloneNewNet = 0x40000000;
    private static int s_counter;
    private readonly List<string> _created = [];

    private NamespaceNetwork(string prefix) => Prefix = prefix;

    public string Prefix { get; }

    /// <summary>The conntrack plugin's settings on members 2 and 3: a replica sink only, or with its event source.</summary>
    public string PluginSettings { get; private init; } = """{ "events": false }""";

    public string Name(int member) => $"{Prefix}-{member}";

    /// <param name="events">The Standbys' plugin also has its event source (the node's default); false: the sink only.</param>
    public static NamespaceNetwork Create(bool events = false)
    {
        var net = new NamespaceNetwork($"{NamePrefix}{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}")
        {
            PluginSettings = events ? """{ "events": true }""" : """{ "events": false }""",
        };
        try
        {
            for (int m = 1; m <= 3; m++)
            {
                net.Must("ip", "netns", "add", net.Name(m));
                net._created.Add(net.Name(m));
                net.Must("ip", "-n", net.Name(m), "link", "set", "lo", "up");
            }

            string hub = net.Name(1);
            net.Must("ip", "-n", hub, "link", "add", "br0", "type", "bridge");
            net.Must("ip", "-n", hub, "addr", "add", "198.18.0.1/24", "dev", "br0");
            net.Must("ip", "-n", hub, "link", "set", "br0", "up");
            for (int m = 2; m <= 3; m++)
            {
                string port = $"csfo{Environment.ProcessId % 1_000_000}p{m}";
                net.Must("ip", "-n", hub, "link", "add", port, "type", "veth", "peer", "name", "sync0", "netns", net.Name(m));
                net.Must("ip", "-n", hub, "link", "set", port, "master", "br0", "up");
                net.Must("ip", "-n", net.Name(m), "addr", "add", $"198.18.0.{m}/24", "dev", "sync0");
                net.Must("ip", "-n", net.Name(m), "link", "set", "sync0", "up");
            }

            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>Deletes namespaces a killed earlier run left behind (named after a process that no longer exists).</summary>
    public static void RemoveStale()
    {
        var (code, list) = BenchHost.RunWithin(60_000, "ip", "netns", "list");
        if (code != 0)
        {
            return;
        }

        foreach (var line in list.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = line.Split(' ')[0];
            var parts = name.Split('-');
            if (name.StartsWith(NamePrefix, StringComparison.Ordinal) && parts.Length == 4 && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                BenchHost.RunWithin(60_000, "ip", "netns", "del", name);
            }
        }
    }

    public string SyncHost(int member) => $"198.18.0.{member}";

    public CliLauncher Launcher(int member, CliLauncher launcher)
        => new("ip", ["netns", "exec", Name(member), launcher.FileName, .. launcher.PrefixArguments]);

    public DataPlaneConfig? DataPlane(int member) => member == 1 ? null : new DataPlaneConfig
    {
        Source = DataPlaneConfig.SourcePlugin,
        Plugin = "conntrack",
        Settings = JsonDocument.Parse(PluginSettings).RootElement.Clone(),
        CommitTimeoutSeconds = 300,
    };

    public Socket CreateTcpSocket(int member)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var fd = File.OpenHandle($"/var/run/netns/{Name(member)}");
                if (SetNs((int)fd.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns into {Name(member)} failed: errno {Marshal.GetLastPInvokeError()}");
                }

                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                error = ex;
            }
        }) { IsBackground = true, Name = "cs-netns-socket" };
        thread.Start();
        thread.Join();
        return socket ?? throw new DemoException($"no socket in namespace {Name(member)}: {error?.Message}");
    }

    /// <summary>Entries in member <paramref name="member"/>'s kernel conntrack table (<c>conntrack -C</c> in its namespace); -1 when that fails.</summary>
    public long CountKernel(int member)
    {
        var (code, output) = BenchHost.RunWithin(60_000, "ip", "netns", "exec", Name(member), "conntrack", "-C");
        return code == 0 && long.TryParse(output.Trim(), CultureInfo.InvariantCulture, out long n) ? n : -1;
    }

    public void Dispose()
    {
        foreach (var name in _created)
        {
            BenchHost.RunWithin(60_000, "ip", "netns", "del", name);
        }

        _created.Clear();
    }

    private void Must(params string[] args)
    {
        var (code, output) = BenchHost.RunWithin(60_000, args);
        if (code != 0)
        {
            throw new DemoException($"'{string.Join(' ', args)}' failed: {output.Trim()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);
}
