using System.CommandLine;
using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Engine.Scheduling;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench delta</c>: two members on loopback, each with its own UDP socket and threads, encrypted.
/// The sender's table is filled with <c>--entries</c> connections (synchronized first, not timed); then updates
/// run round-robin over them for <c>--seconds</c>, as fast as possible or at <c>--rate</c> per second.
/// Latency is measured for every applied update: submit on the sender → applied on the receiver. <c>--breakdown</c>
/// cuts it into stages (<see cref="DeltaStageTrace"/>); <c>--scheduler</c> runs both members' sync threads at a nice
/// value or a real-time policy (<see cref="SyncThreadScheduling"/>); <c>--idle-seconds</c> measures the process's CPU
/// while nothing is submitted, after the timed phase.
/// </summary>
internal static class DeltaBenchmark
{
    public static Command Create()
    {
        var seconds = new Option<double>("--seconds") { Description = "Length of the timed phase.", DefaultValueFactory = _ => 10 };
        var rate = new Option<double?>("--rate") { Description = "Offered updates per second (default: as fast as possible)." };
        var entries = new Option<int>("--entries") { Description = "Connections in the table.", DefaultValueFactory = _ => 1_000_000 };
        var insecure = new Option<bool>("--insecure") { Description = "Run without encryption (for comparison only)." };
        var mtu = new Option<int>("--mtu") { Description = "Largest datagram (default 1400; 8192 models a jumbo-frame sync network).", DefaultValueFactory = _ => 1400 };
        var breakdown = new Option<bool>("--breakdown") { Description = "Break the latency down into stages (sender queue, encode, batch, receiver busy, kernel and wake-up, apply)." };
        var scheduler = new Option<string?>("--scheduler") { Description = "Run both members' sync threads at fifo:PRIORITY, rr:PRIORITY or nice:N (as sync.scheduler; needs root or CAP_SYS_NICE)." };
        var idle = new Option<double>("--idle-seconds") { Description = "After the timed phase, measure the process's CPU while idle for this long (0: not measured).", DefaultValueFactory = _ => 0 };
        return BenchCommand.Create("delta", "Delta-sync throughput and latency between two members on loopback.", [seconds, rate, entries, insecure, mtu, breakdown, scheduler, idle], (parse, bench) =>
        {
            var s = parse.GetValue(seconds);
            var r = parse.GetValue(rate);
            var n = parse.GetValue(entries);
            var m = parse.GetValue(mtu);
            var i = parse.GetValue(idle);
            if (s is <= 0 or > 3600 || r is <= 0 || n is < 1 or > 50_000_000 || m is < 256 or > 65000 || i is < 0 or > 600)
            {
                return bench.Refuse("expected --seconds in (0, 3600], --rate > 0, --entries in [1, 50000000], --mtu in [256, 65000], --idle-seconds in [0, 600]");
            }

            var sched = SyncThreadScheduling.Default;
            if (parse.GetValue(scheduler) is { } text)
            {
                if (!TryParseScheduler(text, out sched, out var error))
                {
                    return bench.Refuse(error);
                }
            }

            var result = Run(TimeSpan.FromSeconds(s), r, n, !parse.GetValue(insecure), m, bench.Progress, null, parse.GetValue(breakdown), sched, TimeSpan.FromSeconds(i));
            return bench.Report(result, 24, result["lost_updates"] is long lost && lost == 0);
        });
    }

    /// <summary><c>--scheduler</c>: <c>fifo:N</c>, <c>rr:N</c>, <c>nice:N</c> or <c>other</c>; the error names the option and what was expected (range and privileges).</summary>
    internal static bool TryParseScheduler(string text, out SyncThreadScheduling scheduling, out string error)
    {
        scheduling = SyncThreadScheduling.Default;
        error = "";
        var parts = text.Split(':', 2);
        bool hasNumber = int.TryParse(parts.Length == 2 ? parts[1] : "0", System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int number);
        string kind = parts[0].ToLowerInvariant();
        if (hasNumber && kind == "nice" && parts.Length == 2)
        {
            scheduling = new SyncThreadScheduling { Nice = number };
        }
        else if (hasNumber && parts.Length == 2 && SyncThreadScheduling.Parse(kind) is { } policy and not SyncSchedulingPolicy.Other)
        {
            scheduling = new SyncThreadScheduling { Policy = policy, Priority = number };
        }
        else if (kind == "other" && parts.Length == 1)
        {
            return true;
        }
        else
        {
            error = $"--scheduler: expected fifo:PRIORITY, rr:PRIORITY (1-99), nice:N (-20 to 19) or other, found '{text}'";
            return false;
        }

        var problems = scheduling.Validate("--scheduler").ToList();
        if (problems.Count == 0 && scheduling.CheckAllowed("--scheduler") is { } denied)
        {
            problems.Add(denied);
        }

        error = "--scheduler: " + string.Join("; ", problems.Select(p => p.StartsWith("--scheduler.", StringComparison.Ordinal) ? p["--scheduler.".Length..] : p));
        return problems.Count == 0;
    }

    /// <param name="channels">Another transport's channel pair (sender, receiver) for a given largest datagram; UDP on loopback when null.</param>
    public static Dictionary<string, object> Run(TimeSpan duration, double? rate, int entries, bool encrypted, int mtu, TextWriter? progress,
        Func<int, (IDatagramChannel Sender, IDatagramChannel Receiver)>? channels = null, bool breakdown = false,
        SyncThreadScheduling? scheduler = null, TimeSpan idle = default)
    {
        double loadAtStart = BenchHost.LoadAverage();
        var key = encrypted ? ClusterKey.Generate() : null;
        IDatagramChannel a, b;
        if (channels is not null)
        {
            (a, b) = channels(Math.Max(1500, mtu));
        }
        else
        {
            (a, b) = LoopbackLink.Create(Math.Max(1500, mtu));
        }

        // Keep the bytes in flight (window × MTU) within what a 4 MiB socket buffer holds.
        int window = Math.Clamp(720 * 1024 / mtu, 16, 512);
        var common = new SyncEngineOptions
        {
            Insecure = !encrypted,
            TableCapacity = entries + 1024,
            Mtu = mtu,
            SendWindowDatagrams = window,
            AckEveryDatagrams = Math.Max(1, window / 16),
            ResendBufferDatagrams = Math.Max(window * 4, 32 * 1024 * 1024 / mtu),
            Scheduler = scheduler ?? SyncThreadScheduling.Default,
        };

        using var sender = new SyncEngine(common with { MemberId = 1, PeerMemberIds = [2] }, a, key);
        using var receiver = new SyncEngine(common with { MemberId = 2, PeerMemberIds = [1] }, b, key);
        var stages = breakdown ? new DeltaStageTrace(entries) : null;
        if (stages is not null)
        {
            sender.StageTrace = stages.ForSender;
            receiver.StageTrace = stages.ForReceiver;
        }

        var submitted = new long[entries];
        var histogram = new long[1_000_001]; // microseconds; the last bucket holds everything ≥ 1 s
        long measuring = 0;
        double tickToMicro = 1_000_000.0 / Stopwatch.Frequency;
        receiver.AppliedObserver = (in ConnectionEvent r) =>
        {
            if (Volatile.Read(ref measuring) == 0)
            {
                return;
            }

            int index = BenchWorkload.IndexOf(r.Key);
            long t = submitted[index];
            if (t != 0)
            {
                // One clock read per applied group (taken as the group starts to apply), not per record: the
                // measurement's own cost stays out of the receiver's budget; it reads at most a group's apply time early.
                long applied = receiver.AppliedGroupTimestamp;
                long us = (long)((applied - t) * tickToMicro);
                histogram[Math.Clamp(us, 0, 1_000_000)]++;
                stages?.Add(index, t, applied);
            }
        };
        sender.Start();
        receiver.Start();

        // Fill: every connection is created (and synchronized) before the clock starts.
        progress?.WriteLine($"filling {entries:N0} connections...");
        BenchWorkload.Fill(sender, entries, ProtocolState.TcpSynSent, 120);
        var batch = new ConnectionEvent[256];
        long nowMs = sender.NowMs();

        if (!BenchWorkload.WaitFor(() => receiver.Counters.UpdatesApplied >= entries, TimeSpan.FromSeconds(120)))
        {
            progress?.WriteLine($"warning: receiver applied only {receiver.Counters.UpdatesApplied:N0} of {entries:N0} before the timed phase");
        }

        progress?.WriteLine($"after fill: sent {sender.Counters.DatagramsSent:N0} datagrams, {sender.Counters.Retransmissions:N0} resent, {sender.Counters.WindowStalls:N0} window stalls, receiver nacked {receiver.Counters.NackRangesSent:N0} ranges");
        int cursor = 0;
        int batchSize = rate is null ? 256 : (int)Math.Clamp(rate.Value / 1_000, 1, 256);
        ProtocolState[] states = [ProtocolState.TcpEstablished, ProtocolState.TcpFinWait, ProtocolState.TcpEstablished];

        // Offered load: paced to --rate; without it, as fast as the sender drains (a producer that outruns the
        // sender only coalesces updates that are never sent, and steals the CPU the sender needs).
        long Drive(Stopwatch clock, TimeSpan length)
        {
            long offered = 0;
            while (clock.Elapsed < length)
            {
                if (rate is not null)
                {
                    if (offered >= rate.Value * clock.Elapsed.TotalSeconds)
                    {
                        // Sleep rather than spin: on two cores a spinning producer takes the CPU the members need.
                        // So the data plane delivers a burst about every millisecond, as a kernel event queue would.
                        Thread.Sleep(1);
                        continue;
                    }
                }
                else if (sender.PendingCount > 16 * 1024)
                {
                    Thread.Sleep(1); // 16k queued is several milliseconds of work for the sender
                    continue;
                }

                long stamp = Stopwatch.GetTimestamp();
                for (int j = 0; j < batchSize; j++)
                {
                    ref var e = ref batch[j];
                    e = ConnectionEvent.Create(ConnectionEventKind.Update, BenchWorkload.KeyOf(cursor), states[(int)(offered % 3)], 432000, nowMs);
                    e.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured;
                    submitted[cursor] = stamp;
                    if (++cursor == entries)
                    {
                        cursor = 0;
                    }
                }

                sender.Submit(batch.AsSpan(0, batchSize));
                offered += batchSize;
            }

            return offered;
        }

        // With --scheduler the producer (the data plane: the kernel's conntrack events in a firewall) runs at the sync
        // threads' scheduling too: an ordinary producer preempted while it holds the table lock in Submit would hold up
        // the real-time sender and receiver behind it (priority inversion), which measures the machine's load, not the engine.
        if (scheduler is { IsDefault: false } producerScheduling && producerScheduling.ApplyToCurrentThread() is not 0 and var errno)
        {
            progress?.WriteLine($"warning: the producer thread could not take {producerScheduling} (errno {errno})");
        }

        // Warm-up (not measured): the same load for a second, so the JIT's later tiers are in place.
        Drive(Stopwatch.StartNew(), TimeSpan.FromSeconds(1));
        BenchWorkload.WaitFor(() => sender.PendingCount == 0, TimeSpan.FromSeconds(10));

        progress?.WriteLine($"timed phase: {duration.TotalSeconds} s, {(rate is null ? "as fast as possible" : $"{rate:N0} updates/s offered")}...");
        var producerTid = ThreadCpu.CurrentThreadId();
        var threadsBefore = (P: ThreadCpu.CpuTime(producerTid), S: ThreadCpu.CpuTime(sender.SenderThreadId), R: ThreadCpu.CpuTime(receiver.ReceiverThreadId));
        var cpuBefore = CpuOf(sender, receiver, producerTid);
        var processBefore = Process.GetCurrentProcess().TotalProcessorTime;
        long appliedBefore = receiver.Counters.UpdatesApplied;
        int gcBefore = GC.CollectionCount(0);
        int gen1Before = GC.CollectionCount(1);
        int gen2Before = GC.CollectionCount(2);
        var pauseBefore = GC.GetTotalPauseDuration();
        long spinHitsBefore = sender.SenderSpinHits;
        long inlineBefore = sender.InlineSends;
        long sentBytesBefore = sender.Counters.BytesSent;
        long sentUpdatesBefore = sender.Counters.UpdatesSent;
        long sentDatagramsBefore = sender.Counters.DatagramsSent;
        long sendCallsBefore = sender.TransportSendCalls;
        Volatile.Write(ref measuring, 1);
        var clock = Stopwatch.StartNew();
        long offered = Drive(clock, duration);

        double elapsed = clock.Elapsed.TotalSeconds;
        long appliedInWindow = receiver.Counters.UpdatesApplied - appliedBefore;
        var cpuAfter = CpuOf(sender, receiver, producerTid);
        var processAfter = Process.GetCurrentProcess().TotalProcessorTime;
        long sentBytes = sender.Counters.BytesSent - sentBytesBefore;
        long sentUpdates = sender.Counters.UpdatesSent - sentUpdatesBefore;
        long sentDatagrams = sender.Counters.DatagramsSent - sentDatagramsBefore;
        long sendCalls = sender.TransportSendCalls - sendCallsBefore;
        int processThreads = Process.GetCurrentProcess().Threads.Count; // both members, the producer and the runtime's own
        var pause = GC.GetTotalPauseDuration() - pauseBefore;
        int gen1 = GC.CollectionCount(1) - gen1Before;
        int gen2 = GC.CollectionCount(2) - gen2Before;
        long spinHits = sender.SenderSpinHits - spinHitsBefore;
        long inlineSends = sender.InlineSends - inlineBefore;

        // Drain, then compare the tables entry by entry.
        BenchWorkload.WaitFor(() => LiveDifferences(sender, receiver, quick: true) == 0, TimeSpan.FromSeconds(30));
        Volatile.Write(ref measuring, 0);
        long lost = LiveDifferences(sender, receiver, quick: false);

        // Idle: nothing submitted; what the two members cost with only their heartbeats, acks and timers.
        double idleCpuPercent = -1;
        if (idle > TimeSpan.Zero)
        {
            var idleBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var idleClock = Stopwatch.StartNew();
            Thread.Sleep(idle);
            idleCpuPercent = Math.Round(100 * (Process.GetCurrentProcess().TotalProcessorTime - idleBefore).TotalSeconds / idleClock.Elapsed.TotalSeconds, 2);
        }

        var result = new Dictionary<string, object>
        {
            ["updates_per_second"] = Math.Round(appliedInWindow / elapsed),
            ["offered_per_second"] = Math.Round(offered / elapsed),
            ["latency_p50_ms"] = Percentile(histogram, 0.50),
            ["latency_p90_ms"] = Percentile(histogram, 0.90),
            ["latency_p99_ms"] = Percentile(histogram, 0.99),
            ["latency_p999_ms"] = Percentile(histogram, 0.999),
            ["latency_max_ms"] = Percentile(histogram, 1.0),
            ["bytes_per_update"] = sentUpdates == 0 ? 0 : Math.Round((double)sentBytes / sentUpdates, 1),
            ["sender_cpu_seconds"] = Math.Round((cpuAfter.Sender - cpuBefore.Sender).TotalSeconds, 2),
            ["receiver_cpu_seconds"] = Math.Round((cpuAfter.Receiver - cpuBefore.Receiver).TotalSeconds, 2),
            ["process_cpu_seconds"] = Math.Round((processAfter - processBefore).TotalSeconds, 2),
            ["lost_updates"] = lost,
            ["seconds"] = Math.Round(elapsed, 2),
            ["entries"] = entries,
            ["mtu"] = mtu,
            ["encrypted"] = encrypted,
            ["datagrams"] = sender.Counters.DatagramsSent,
            ["retransmissions"] = sender.Counters.Retransmissions,
            ["window_stalls"] = sender.Counters.WindowStalls,
            ["receiver_drops"] = receiver.Counters.TotalDrops,
            ["resync_needed"] = receiver.Counters.ResyncNeeded,
            ["cores"] = Environment.ProcessorCount,
            ["gc_collections"] = GC.CollectionCount(0) - gcBefore,
            ["transport_path"] = sender.TransportPath,
            ["datagrams_per_send_call"] = sendCalls == 0 ? 1.0 : Math.Round((double)sentDatagrams / sendCalls, 1),
            ["process_threads"] = processThreads,
            ["gc_gen1"] = gen1,
            ["gc_gen2"] = gen2,
            ["gc_pause_ms"] = Math.Round(pause.TotalMilliseconds, 2),
            ["sender_spin_hits"] = spinHits,
            ["inline_sends"] = inlineSends,
            ["scheduler"] = (scheduler ?? SyncThreadScheduling.Default).ToString(),
            ["load_average_1m"] = loadAtStart,
        };
        if (idleCpuPercent >= 0)
        {
            result["idle_cpu_percent"] = idleCpuPercent;
        }

        if (stages is not null)
        {
            result["breakdown"] = stages.Report();
        }

        if (Environment.GetEnvironmentVariable("CLUSTERSYNC_BENCH_COUNTERS") == "1")
        {
            progress?.WriteLine($"cpu in the timed phase and drain: producer {(ThreadCpu.CpuTime(producerTid) - threadsBefore.P).TotalSeconds:F2} s, sender thread {(ThreadCpu.CpuTime(sender.SenderThreadId) - threadsBefore.S).TotalSeconds:F2} s, receiver thread {(ThreadCpu.CpuTime(receiver.ReceiverThreadId) - threadsBefore.R).TotalSeconds:F2} s");
            foreach (var (name, value) in sender.Counters.ToDictionary().Where(kv => kv.Value != 0))
            {
                progress?.WriteLine($"sender.{name} = {value}");
            }

            foreach (var (name, value) in receiver.Counters.ToDictionary().Where(kv => kv.Value != 0))
            {
                progress?.WriteLine($"receiver.{name} = {value}");
            }
        }

        return result;
    }

    private static (TimeSpan Sender, TimeSpan Receiver) CpuOf(SyncEngine sender, SyncEngine receiver, int producerTid)
        => (ThreadCpu.CpuTime(producerTid) + ThreadCpu.CpuTime(sender.SenderThreadId) + ThreadCpu.CpuTime(sender.ReceiverThreadId),
            ThreadCpu.CpuTime(receiver.ReceiverThreadId) + ThreadCpu.CpuTime(receiver.SenderThreadId));

    /// <summary>The <paramref name="q"/> quantile of a latency histogram with one bucket per microsecond, in milliseconds.</summary>
    internal static double Percentile(long[] histogram, double q)
    {
        long total = histogram.Sum();
        if (total == 0)
        {
            return 0;
        }

        long target = Math.Max(1, (long)Math.Ceiling(total * q));
        long seen = 0;
        for (int us = 0; us < histogram.Length; us++)
        {
            seen += histogram[us];
            if (seen >= target)
            {
                return Math.Round(us / 1000.0, 3);
            }
        }

        return 1000;
    }

    /// <summary>Entries of the sender that the receiver lacks or holds at another version.</summary>
    private static long LiveDifferences(SyncEngine sender, SyncEngine receiver, bool quick)
    {
        if (quick && sender.LastDataSequence != 0 && receiver.Counters.UpdatesApplied < sender.Counters.UpdatesSent)
        {
            return 1;
        }

        var want = sender.SnapshotTable();
        long diff = 0;
        foreach (var (k, e) in want)
        {
            if (!receiver.TryGetEntry(k, out var got) || got.Version != e.Version)
            {
                diff++;
            }
        }

        return diff;
    }
}
