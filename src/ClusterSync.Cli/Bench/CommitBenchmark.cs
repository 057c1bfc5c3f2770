using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Cli.Demo;
using ClusterSync.Node.Plugins;
using ClusterSync.Connections;
using ClusterSync.DataPlane;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench commit</c>: how fast a replica is committed into the Linux kernel's conntrack table on failover.
/// Runs in a network namespace of its own (<c>ip netns add</c>, then itself again under <c>ip netns exec</c>; the
/// namespace is removed afterwards), loads the shipped <c>conntrack</c> data-plane plugin through the plugin catalog
/// (the CLI never references a plugin), commits <c>--entries</c> established TCP connections through its
/// <see cref="IReplicaSink"/>, reads its counters (<see cref="IDataPlaneStatus"/>: <c>refused</c>) and verifies with a
/// dump (<c>conntrack -L</c>) that the kernel holds them all. Needs root (CAP_NET_ADMIN, namespaces).
/// </summary>
internal static class CommitBenchmark
{
    private const string InsideVariable = "CLUSTERSYNC_BENCH_COMMIT_NETNS";

    public static Command Create()
    {
        var entries = new Option<int>("--entries") { Description = "Connections to commit.", DefaultValueFactory = _ => 200_000 };
        var ack = new Option<bool>("--ack") { Description = "Ask the kernel for an ACK per entry (default: only errors come back)." };
        var batch = new Option<int>("--batch-bytes") { Description = "Messages packed per send.", DefaultValueFactory = _ => 256 * 1024 };
        var plugins = new Option<DirectoryInfo?>("--plugins") { Description = "Plugin directory (default: plugins/ next to clustersync)." };
        return BenchCommand.Create("commit", "Commit N connections into kernel conntrack (a namespace of its own) through the conntrack plugin.", [entries, ack, batch, plugins], (parse, bench) =>
        {
            int n = parse.GetValue(entries);
            int b = parse.GetValue(batch);
            if (n is < 1 or > 5_000_000 || b is < 4096 or > 16 << 20)
            {
                return bench.Refuse("expected --entries in [1, 5000000] and --batch-bytes in [4096, 16777216]");
            }

            if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
            {
                return bench.Refuse("needs Linux and root (it creates a network namespace and needs CAP_NET_ADMIN)");
            }

            var directory = parse.GetValue(plugins) is { } given ? Commands.PathOptions.InputDirectory("--plugins", given.FullName) : PluginCatalog.DefaultDirectory;
            bool a = parse.GetValue(ack);
            return Environment.GetEnvironmentVariable(InsideVariable) is { Length: > 0 } ns
                ? Inside(bench, ns, n, a, b, directory)
                : Outside(bench, [
                    "--entries", n.ToString(CultureInfo.InvariantCulture), "--batch-bytes", b.ToString(CultureInfo.InvariantCulture),
                    "--plugins", directory, .. (a ? (string[])["--ack"] : []), .. (bench.Json ? (string[])["--json"] : [])]);
        });
    }

    /// <summary>Creates the namespace, runs this command again inside it, removes the namespace.</summary>
    private static int Outside(BenchCommand bench, string[] arguments)
    {
        string ns = $"clustersync-bench-{Environment.ProcessId}";
        var (code, output) = BenchHost.Run("ip", "netns", "add", ns);
        if (code != 0)
        {
            return bench.Refuse($"ip netns add {ns} failed: {output.Trim()}", CommandLine.Failure);
        }

        try
        {
            BenchHost.Run("ip", "-n", ns, "link", "set", "lo", "up");
            var launcher = CliLauncher.Current();
            var info = new ProcessStartInfo("ip") { UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", ns, launcher.FileName, .. launcher.PrefixArguments, "bench", "commit", .. arguments])
            {
                info.ArgumentList.Add(a);
            }

            info.Environment[InsideVariable] = ns;
            using var child = Process.Start(info)!;
            child.WaitForExit();
            return child.ExitCode;
        }
        finally
        {
            BenchHost.Run("ip", "netns", "del", ns);
        }
    }

    private static int Inside(BenchCommand bench, string ns, int count, bool ack, int batchBytes, string directory)
    {
        using var catalog = PluginCatalog.Load(directory);
        if (!catalog.TryGetDataPlane("conntrack", out var factory, out var info))
        {
            return bench.Refuse($"no loaded data-plane plugin 'conntrack' in {catalog.Directory}");
        }

        var settings = JsonDocument.Parse(string.Create(CultureInfo.InvariantCulture, $$"""{ "events": false, "ack": {{(ack ? "true" : "false")}}, "batchBytes": {{batchBytes}} }""")).RootElement.Clone();
        IReplicaSink sink;
        try
        {
            sink = factory.CreateSink(new DataPlaneContext(1, settings));
        }
        catch (UnauthorizedAccessException ex)
        {
            return bench.Refuse(ex.Message);
        }

        var replica = Replica(count);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        sink.Commit(replica);
        double seconds = clock.Elapsed.TotalSeconds;
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        var counters = (sink as IDataPlaneStatus)?.GetCounters() ?? new Dictionary<string, long>();
        (sink as IDisposable)?.Dispose();

        // A dump of the namespace's table: every committed connection must be there.
        var (code, listing) = BenchHost.Run("conntrack", "-L", "-p", "tcp");
        long inKernel = code == 0 ? listing.Split('\n').Count(l => l.StartsWith("tcp ", StringComparison.Ordinal)) : -1;
        var result = new Dictionary<string, object>
        {
            ["entries"] = count,
            ["seconds"] = Math.Round(seconds, 4),
            ["entries_per_second"] = Math.Round(count / seconds),
            ["cpu_seconds"] = Math.Round(cpuSeconds, 4),
            ["entries_per_cpu_second"] = cpuSeconds > 0 ? Math.Round(count / cpuSeconds) : 0,
            ["load_average"] = BenchHost.LoadAverage(),
            ["refused"] = counters.GetValueOrDefault("refused"),
            ["committed"] = counters.GetValueOrDefault("committed"),
            ["kernel_entries"] = inKernel,
            ["verified"] = inKernel == count,
            ["ack"] = ack,
            ["batch_bytes"] = batchBytes,
            ["batches"] = counters.GetValueOrDefault("batches"),
            ["plugin"] = $"conntrack {info.Version}",
            ["netns"] = ns,
        };
        // Where the wall time went: inside send (the kernel inserting the batch), reading error replies, and the rest
        // (building the messages, mapping the replica).
        long us = counters.GetValueOrDefault("last_commit_us");
        long sendUs = counters.GetValueOrDefault("last_commit_send_us");
        long drainUs = counters.GetValueOrDefault("last_commit_drain_us");
        result["send_seconds"] = sendUs / 1e6;
        result["drain_seconds"] = drainUs / 1e6;
        result["build_seconds"] = Math.Max(0, us - sendUs - drainUs) / 1e6;
        foreach (var (name, value) in counters.Where(c => c.Key.StartsWith("refused_", StringComparison.Ordinal)))
        {
            result[name] = value;
        }

        return bench.Report(result, 22, inKernel == count && counters.GetValueOrDefault("refused") == 0);
    }

    /// <summary>Established TCP connections 10.x.y.z:port → 192.168.0.0/16:443, all distinct, 1 hour idle timeout.</summary>
    private static List<KeyValuePair<ConnectionKey, ConnectionEntry>> Replica(int count)
    {
        var replica = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(count);
        for (int i = 0; i < count; i++)
        {
            var key = ConnectionKey.IPv4(0x0A000000u | (uint)(i >> 12), 0xC0A80000u | (uint)(i & 0xFF), (ushort)(10_000 + ((i >> 8) & 0xF)), 443, 6);
            replica.Add(new(key, new ConnectionEntry
            {
                Reply = key.InverseTuple,
                State = ProtocolState.TcpEstablished,
                Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed,
                TimeoutSeconds = 3600,
            }));
        }

        return replica;
    }
}
