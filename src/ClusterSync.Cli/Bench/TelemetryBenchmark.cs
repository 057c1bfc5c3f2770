using System.CommandLine;
using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Telemetry;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench telemetry</c>: what telemetry capture at full rate costs delta sync. Two members on loopback
/// (encrypted, as <c>bench delta</c>), a churn workload — every connection lives <c>--events</c> events (new, updates,
/// destroy) and is then born again — driven as fast as the sender drains. Rounds alternate capture off / on (every
/// ended connection's lifecycle record written to a LiteDB file, sample rate 1); the result compares the median
/// updates applied per second of the two.
/// </summary>
internal static class TelemetryBenchmark
{
    public static Command Create()
    {
        var seconds = new Option<double>("--seconds") { Description = "Length of each round.", DefaultValueFactory = _ => 5 };
        var rounds = new Option<int>("--rounds") { Description = "Rounds per mode (off and on alternate).", DefaultValueFactory = _ => 3 };
        var entries = new Option<int>("--entries") { Description = "Connection slots (live connections).", DefaultValueFactory = _ => 200_000 };
        var events = new Option<int>("--events") { Description = "Events per connection life (new, updates, destroy).", DefaultValueFactory = _ => 8 };
        var db = new Option<FileInfo?>("--db") { Description = "Telemetry file to write (default: a temporary file, deleted after)." };
        return BenchCommand.Create("telemetry", "Delta-sync throughput with telemetry capture off and on (full rate), on a churn workload.", [seconds, rounds, entries, events, db], (parse, bench) =>
        {
            var s = parse.GetValue(seconds);
            var r = parse.GetValue(rounds);
            var n = parse.GetValue(entries);
            var ev = parse.GetValue(events);
            if (s is <= 0 or > 600 || r is < 1 or > 50 || n is < 256 or > 10_000_000 || ev is < 2 or > 1000)
            {
                return bench.Refuse("expected --seconds in (0, 600], --rounds in [1, 50], --entries in [256, 10000000], --events in [2, 1000]");
            }

            var dbPath = parse.GetValue(db) is { } file ? Commands.PathOptions.OutputFile("--db", file.FullName) : null;
            var result = Run(TimeSpan.FromSeconds(s), r, n, ev, dbPath, bench.Progress);
            return bench.Report(result, 28, passed: true);
        });
    }

    public static Dictionary<string, object> Run(TimeSpan round, int rounds, int entries, int eventsPerLife, string? dbPath, TextWriter? progress)
    {
        var key = ClusterKey.Generate();
        var (a, b) = LoopbackLink.Create();
        var common = new SyncEngineOptions
        {
            TableCapacity = entries + 1024,
            SendWindowDatagrams = 512,
            AckEveryDatagrams = 32,
            ResendBufferDatagrams = 32 * 1024 * 1024 / 1400,
        };
        using var sender = new SyncEngine(common with { MemberId = 1, PeerMemberIds = [2] }, a, key);
        using var receiver = new SyncEngine(common with { MemberId = 2, PeerMemberIds = [1] }, b, key);
        bool temporary = dbPath is null;
        dbPath ??= Path.Combine(Path.GetTempPath(), $"clustersync-bench-telemetry-{Environment.ProcessId}.db");
        File.Delete(dbPath);
        var recorder = new TelemetryRecorder(new TelemetryOptions { Enabled = true, Path = dbPath, SampleRate = 1 }, sender.MemberId, sender.Catalog.Classes);
        sender.Start();
        receiver.Start();

        var step = new int[entries]; // where each slot is in its life
        var batch = new ConnectionEvent[256];
        int cursor = 0;
        long Drive(TimeSpan length)
        {
            var clock = Stopwatch.StartNew();
            long offered = 0;
            long nowMs = sender.NowMs();
            while (clock.Elapsed < length)
            {
                if (sender.PendingCount > 16 * 1024)
                {
                    Thread.Sleep(1);
                    continue;
                }

                for (int j = 0; j < batch.Length; j++)
                {
                    int slot = cursor;
                    if (++cursor == entries)
                    {
                        cursor = 0;
                        nowMs = sender.NowMs();
                    }

                    int s = step[slot];
                    step[slot] = s + 1 == eventsPerLife ? 0 : s + 1;
                    var k = BenchWorkload.KeyOf(slot);
                    ref var e = ref batch[j];
                    if (s == eventsPerLife - 1)
                    {
                        e = new ConnectionEvent { Kind = ConnectionEventKind.Destroy, Key = k };
                    }
                    else
                    {
                        e = ConnectionEvent.Create(s == 0 ? ConnectionEventKind.New : ConnectionEventKind.Update, k,
                            s == 0 ? ProtocolState.TcpSynSent : ProtocolState.TcpEstablished, 3600, nowMs);
                        e.Entry.Status = s == 0 ? ConnectionStatus.Confirmed : ConnectionStatus.Confirmed | ConnectionStatus.SeenReply | ConnectionStatus.Assured;
                    }
                }

                sender.Submit(batch);
                offered += batch.Length;
            }

            return offered;
        }

        progress?.WriteLine($"warm-up: {entries:N0} slots, {eventsPerLife} events per connection life...");
        Drive(TimeSpan.FromSeconds(2));
        BenchWorkload.WaitFor(() => sender.PendingCount == 0, TimeSpan.FromSeconds(10));

        var off = new List<double>();
        var on = new List<double>();
        var connectionsOn = new List<double>();
        var ratios = new List<double>();
        var cpuOff = new List<double>();
        var cpuOn = new List<double>();
        double pairOff = 0;
        double pairOn = 0;
        var writerCpu = TimeSpan.Zero;
        double onSeconds = 0;
        for (int r = 0; r < rounds * 2; r++)
        {
            // Pairs in ABBA order (off-on, on-off, ...) so a drifting machine load cancels out of the pair ratios.
            bool capture = (r % 2 == 1) ^ ((r / 2) % 2 == 1);
            var cpuBefore = ThreadCpu.CpuTime(recorder.WriterThreadId);
            var processBefore = Process.GetCurrentProcess().TotalProcessorTime;
            sender.OutcomeSink = capture ? recorder : null;
            long applied0 = receiver.Counters.UpdatesApplied;
            long ended0 = recorder.Ended;
            var clock = Stopwatch.StartNew();
            Drive(round);
            double elapsed = clock.Elapsed.TotalSeconds;
            long appliedInRound = receiver.Counters.UpdatesApplied - applied0;
            double rate = appliedInRound / elapsed;
            (capture ? on : off).Add(rate);
            if (capture)
            {
                pairOn = rate;
                connectionsOn.Add((recorder.Ended - ended0) / elapsed);
                BenchWorkload.WaitFor(() => recorder.Captured == recorder.Written, TimeSpan.FromSeconds(30));
                writerCpu += ThreadCpu.CpuTime(recorder.WriterThreadId) - cpuBefore;
                cpuOn.Add((Process.GetCurrentProcess().TotalProcessorTime - processBefore).TotalMilliseconds * 1000 / Math.Max(1, appliedInRound));
                onSeconds += elapsed;
            }
            else
            {
                pairOff = rate;
                cpuOff.Add((Process.GetCurrentProcess().TotalProcessorTime - processBefore).TotalMilliseconds * 1000 / Math.Max(1, appliedInRound));
            }

            if (r % 2 == 1)
            {
                ratios.Add(pairOn / pairOff);
            }

            progress?.WriteLine($"round {r + 1}: capture {(capture ? "on " : "off")}: {rate:N0} updates/s applied");
            BenchWorkload.WaitFor(() => sender.PendingCount == 0, TimeSpan.FromSeconds(10));
        }

        sender.OutcomeSink = null;
        BenchWorkload.WaitFor(() => recorder.Captured == recorder.Written, TimeSpan.FromSeconds(30));
        recorder.Dispose();
        long fileBytes = new FileInfo(dbPath).Length;
        double medianOff = Median(off);
        double medianOn = Median(on);
        var result = new Dictionary<string, object>
        {
            ["updates_per_second_capture_off"] = Math.Round(medianOff),
            ["updates_per_second_capture_on"] = Math.Round(medianOn),
            ["overhead_percent"] = Math.Round((1 - Median(ratios)) * 100, 2),
            ["overhead_percent_of_medians"] = Math.Round((1 - (medianOn / medianOff)) * 100, 2),
            ["pair_ratios_on_over_off"] = string.Join(" ", ratios.Select(x => x.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture))),
            ["telemetry_writer_cpu_seconds_per_second"] = Math.Round(writerCpu.TotalSeconds / Math.Max(1e-9, onSeconds), 3),
            ["telemetry_writer_cpu_microseconds_per_record"] = Math.Round(writerCpu.TotalMilliseconds * 1000 / Math.Max(1, recorder.Written), 2),
            ["process_cpu_microseconds_per_update_off"] = Math.Round(Median(cpuOff), 3),
            ["process_cpu_microseconds_per_update_on"] = Math.Round(Median(cpuOn), 3),
            ["cpu_overhead_percent"] = Math.Round(((Median(cpuOn) / Median(cpuOff)) - 1) * 100, 2),
            ["connections_ended_per_second_capture_on"] = Math.Round(Median(connectionsOn)),
            ["rounds_off"] = string.Join(" ", off.Select(x => Math.Round(x).ToString(System.Globalization.CultureInfo.InvariantCulture))),
            ["rounds_on"] = string.Join(" ", on.Select(x => Math.Round(x).ToString(System.Globalization.CultureInfo.InvariantCulture))),
            ["records_written"] = recorder.Written,
            ["records_dropped"] = recorder.Dropped,
            ["segments"] = recorder.Segments,
            ["db_bytes"] = fileBytes,
            ["events_per_connection"] = eventsPerLife,
            ["entries"] = entries,
            ["round_seconds"] = round.TotalSeconds,
            ["cores"] = Environment.ProcessorCount,
        };
        if (temporary)
        {
            File.Delete(dbPath);
            File.Delete(Path.ChangeExtension(dbPath, null) + "-log.db");
        }

        return result;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
