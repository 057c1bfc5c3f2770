using System.CommandLine;
using System.Net;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.FullSync;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench fullsync</c>: a source member holding <c>--entries</c> connections and a joining member, both on
/// loopback with encrypted UDP delta sync running between them; the joiner pulls a snapshot over encrypted TCP.
/// Timed: handshake + transfer + apply. Then every live entry of both tables is compared.
/// </summary>
internal static class FullSyncBenchmark
{
    public static Command Create()
    {
        var entries = new Option<int>("--entries") { Description = "Connections in the source's table.", DefaultValueFactory = _ => 1_000_000 };
        var settle = new Option<int>("--settle-ms")
        {
            Description = "Wait this long after the joiner's first-contact resync before pulling (0: pull at once, during the retransmission storm).",
            DefaultValueFactory = _ => 1000,
        };
        return BenchCommand.Create("fullsync", "Full-sync transfer (snapshot over encrypted TCP) from a source to a joining member on loopback.", [entries, settle], (parse, bench) =>
        {
            var n = parse.GetValue(entries);
            if (n is < 1 or > 20_000_000)
            {
                return bench.Refuse("expected --entries in [1, 20000000]");
            }

            int settleMs = parse.GetValue(settle);
            if (settleMs is < 0 or > 60_000)
            {
                return bench.Refuse("expected --settle-ms in [0, 60000]");
            }

            var result = Run(n, bench.Progress, settleMs);
            return bench.Report(result, 24, result["identical"] is true);
        });
    }


    public static Dictionary<string, object> Run(int entries, TextWriter? progress, int settleMs = 1000)
    {
        var key = ClusterKey.Generate();
        var (a, b) = LoopbackLink.Create();
        // The source runs before the joiner exists: its deltas go nowhere (a partitioned link) while it fills.
        var sourceLink = new FaultInjectingChannel(a, seed: 1) { Partitioned = true };
        var common = new SyncEngineOptions { TableCapacity = entries + 1024, Policy = new Policy.PolicyOptions
        {
            Classes = [new Policy.ServiceClassOptions { Name = "default", Policy = "full" }],
            Rules = [],
        } };

        using var source = new SyncEngine(common with { MemberId = 1, PeerMemberIds = [2] }, sourceLink, key);
        using var joiner = new SyncEngine(common with { MemberId = 2, PeerMemberIds = [1] }, b, key);
        source.Start();

        progress?.WriteLine($"filling the source with {entries:N0} connections...");
        BenchWorkload.Fill(source, entries, ProtocolState.TcpEstablished, 432000);

        BenchWorkload.WaitFor(() => source.PendingCount == 0 && source.Counters.UpdatesSent >= entries, TimeSpan.FromSeconds(60));
        sourceLink.Partitioned = false;
        joiner.Start();
        // The joiner's first heartbeat from the source reveals the gap below the source's resend buffer (resync
        // needed) and starts the retransmission of what the buffer still holds. The client covers the source's
        // stream as soon as Begin arrives, which ends that storm; --settle-ms lets it run out first instead
        // (delta sync keeps running throughout).
        BenchWorkload.WaitFor(() => joiner.Counters.ResyncNeeded > 0, TimeSpan.FromSeconds(5));
        if (settleMs > 0)
        {
            Thread.Sleep(settleMs);
        }

        using var sourceTcp = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), []);
        using var joinerTcp = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), [sourceTcp.LocalEndPoint]);
        var server = new FullSyncServer(source, sourceTcp, key);
        server.Start();
        var client = new FullSyncClient(joiner, joinerTcp, key);

        progress?.WriteLine("full sync...");
        long deltaBefore = joiner.Counters.UpdatesApplied;
        long retransmitsBefore = source.Counters.Retransmissions;
        var cpuBefore = Environment.CpuUsage.TotalTime;
        long gc0 = GC.CollectionCount(0);
        var pulled = client.PullAsync(0).GetAwaiter().GetResult();
        long deltaAfter = joiner.Counters.UpdatesApplied;
        long retransmitsAfter = source.Counters.Retransmissions;
        var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
        long gcs = GC.CollectionCount(0) - gc0;
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        progress?.WriteLine($"pulled: {pulled.Status} {pulled.Error}");

        var (identical, compared, differences) = Compare(source, joiner);
        return new Dictionary<string, object>
        {
            ["entries"] = pulled.Entries,
            ["seconds"] = Math.Round(pulled.Seconds, 4),
            ["cpu_seconds"] = Math.Round(cpu.TotalSeconds, 4), // both members, every thread (delta sync included)
            ["identical"] = identical && pulled.Succeeded,
            ["bytes"] = pulled.Bytes,
            ["entries_per_second"] = Math.Round(pulled.Entries / Math.Max(pulled.Seconds, 1e-9)),
            ["megabytes_per_second"] = Math.Round(pulled.Bytes / 1e6 / Math.Max(pulled.Seconds, 1e-9), 1),
            ["status"] = pulled.Status.ToString(),
            ["compared"] = compared,
            ["differences"] = differences,
            ["cut_sequence"] = pulled.CutSequence,
            ["gen0_collections"] = gcs,
            ["encrypted"] = true,
            ["joiner_delta_applied_before"] = deltaBefore,
            ["joiner_delta_applied_during"] = deltaAfter - deltaBefore,
            ["source_retransmissions_during"] = retransmitsAfter - retransmitsBefore,
            ["settle_ms"] = settleMs,
        };
    }

    /// <summary>Every live entry of both tables: same keys, <see cref="ConnectionEntry.SameState"/>.</summary>
    private static (bool Identical, long Compared, long Differences) Compare(SyncEngine source, SyncEngine joiner)
    {
        var left = source.SnapshotTable();
        long differences = 0;
        foreach (var (k, e) in left)
        {
            if (!joiner.TryGetEntry(k, out var other) || (other.Status & ConnectionStatus.Tombstone) != 0 || !other.SameState(e))
            {
                differences++;
            }
        }

        differences += Math.Abs(joiner.SnapshotTable().Count - left.Count);
        return (differences == 0, left.Count, differences);
    }

}
