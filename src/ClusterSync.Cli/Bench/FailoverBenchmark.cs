using System.CommandLine;
using ClusterSync.Cli.Demo;
using ClusterSync.Node.Configuration;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench failover [--entries N] [--rate R] [--heartbeat-ms H] [--dead-after K] [--data-plane in-process|conntrack] [--json]</c>: the demo's
/// cluster (three <c>clustersync node</c> processes on loopback, encrypted, heartbeat H ms (100), dead after K missed (3)) with every connection
/// synchronized at once; the data plane fills the Active until the member that will take over holds N connections,
/// keeps changing them, and the Active is SIGKILLed under that churn.
/// <c>failover_ms</c> = the new Active's own "serving" timestamp (Unix ms, taken when it announced Active after
/// committing its replica) minus the kill time (Unix ms, taken just before <c>kill(2)</c>), same machine clock;
/// <c>promoting_ms</c>, <c>first_commit_ms</c> and <c>last_commit_ms</c> the same for its decision to take over (it
/// announced Promoting), the first connection handed to its data plane and the last (its /failover timestamps).
/// <c>max_heartbeat_gap_ms</c>: the largest gap the other survivor saw in the new Active's packets from its Promoting
/// to the end of its commit (both survivors' <c>/failover/heard</c> logs, <see cref="KernelFailover.HeartbeatGaps"/>).
/// With <c>--data-plane conntrack</c> (<see cref="KernelFailover"/>) the members run in network namespaces and the new
/// Active also commits into its kernel conntrack table through the conntrack plugin: <c>first_commit_ms</c> and
/// <c>last_commit_ms</c> are then the plugin's (its first batch in the kernel, its last), the in-process sink's are
/// <c>inprocess_first_commit_ms</c> and <c>inprocess_last_commit_ms</c>.
/// </summary>
internal static class FailoverBenchmark
{
    public static Command Create()
    {
        var entries = new Option<int>("--entries") { Description = "Connections the new Active must commit.", DefaultValueFactory = _ => 100_000 };
        var rate = new Option<double>("--rate") { Description = "Changes per second into the Active once it holds N connections (the churn at the kill).", DefaultValueFactory = _ => 5_000 };
        var heartbeat = new Option<int>("--heartbeat-ms") { Description = "The members' heartbeat interval in ms (sync.heartbeatInterval).", DefaultValueFactory = _ => 100 };
        var deadAfter = new Option<int>("--dead-after") { Description = "Heartbeats missed before a member counts as dead (sync.deadAfterMissedHeartbeats).", DefaultValueFactory = _ => 3 };
        var dataPlane = new Option<string>("--data-plane")
        {
            Description = "Where the new Active commits: in-process (the node's replica sink; members on loopback) or conntrack (the Standbys' kernel conntrack tables through the conntrack plugin, each member in a network namespace of its own; needs root).",
            DefaultValueFactory = _ => InProcess,
        };
        var events = new Option<bool>("--events")
        {
            Description = "With --data-plane conntrack: the Standbys' plugin also has its event source (as a node that announces its kernel's connections; the commit then also feeds its subscription and its echo registry). Default: the sink only.",
        };
        var scheduler = new Option<string?>("--scheduler") { Description = "The members' sync.scheduler: fifo:PRIORITY, rr:PRIORITY (1-99), nice:N (-20 to 19) or other (default). fifo/rr and a negative nice need root or CAP_SYS_NICE." };
        return BenchCommand.Create("failover", "Failover time with N connections: the Active SIGKILLed under churn, the new Active serving with its replica committed.", [entries, rate, heartbeat, deadAfter, dataPlane, events, scheduler], async (parse, bench, token) =>
        {
            var sched = Engine.Scheduling.SyncThreadScheduling.Default;
            if (parse.GetValue(scheduler) is { } schedText && !DeltaBenchmark.TryParseScheduler(schedText, out sched, out var schedError))
            {
                return bench.Refuse(schedError);
            }

            string plane = parse.GetValue(dataPlane)?.Trim().ToLowerInvariant() ?? "";
            if (plane is not (InProcess or Conntrack))
            {
                return bench.Refuse($"--data-plane: expected {InProcess} or {Conntrack}, found '{parse.GetValue(dataPlane)}'");
            }

            int n = parse.GetValue(entries);
            double r = parse.GetValue(rate);
            int hb = parse.GetValue(heartbeat);
            int missed = parse.GetValue(deadAfter);
            if (hb is < 5 or > 1000)
            {
                return bench.Refuse("--heartbeat-ms: expected 5 to 1000");
            }

            if (missed is < 2 or > 100)
            {
                return bench.Refuse("--dead-after: expected 2 to 100");
            }

            if (n is < 1 or > 5_000_000)
            {
                return bench.Refuse("--entries: expected 1 to 5000000");
            }

            if (!(r >= 1000 && r <= 1_000_000))
            {
                return bench.Refuse("--rate: expected 1000 to 1000000 changes/s");
            }

            // Population 2N: the first N changes (at 100,000/s) open N connections; then 2 s of churn at --rate
            // (≈30 % new, 55 % updates, 15 % destroys) and the kill.
            var options = new DemoOptions
            {
                ChurnSeconds = 2, Rate = r, FillRate = 100_000, Connections = 2 * n, MinReplica = n, Policy = DemoPolicy.SyncAll, ServiceLifetimes = false,
                HeartbeatInterval = TimeSpan.FromMilliseconds(hb), DeadAfterMissedHeartbeats = missed,
                Scheduler = new SchedulerConfig
                {
                    Policy = sched.Policy switch { Engine.Scheduling.SyncSchedulingPolicy.Fifo => "fifo", Engine.Scheduling.SyncSchedulingPolicy.RoundRobin => "rr", _ => "other" },
                    Priority = sched.Priority,
                    Nice = sched.Nice,
                },
            };
            if (plane == Conntrack)
            {
                if (KernelFailover.Unavailable() is { } why)
                {
                    return bench.Refuse($"--data-plane conntrack {why}");
                }

                bool withEvents = parse.GetValue(events);
                var (kernelResult, kernelDoc, kernelCode) = await WithCleanupAsync(t => KernelFailover.MeasureAsync(options, n, Console.Error.WriteLine, t, withEvents), token).ConfigureAwait(false);
                return kernelResult is null
                    ? kernelCode
                    : bench.Report(kernelDoc!, 32, DemoCommand.Passed(kernelResult) && kernelResult.Committed >= n && kernelDoc!["verified"] is true
                        && kernelResult.ExtraTakeovers == 0 && kernelDoc.GetValueOrDefault("survivors_declared_dead") is 0);
            }

            var (result, code) = await DemoCommand.RunWithCleanupAsync(options with { CollectHeard = true }, Console.Error.WriteLine, token).ConfigureAwait(false);
            if (result is null)
            {
                return code;
            }

            var doc = KernelFailover.Document(result, n, options, InProcess);
            KernelFailover.HeartbeatGaps(doc, result, result.ActiveFailover?.GetProperty("commitFinishedUnixMs").GetDouble() ?? 0);
            return bench.Report(doc, 32, DemoCommand.Passed(result) && result.Committed >= n);
        });
    }

    private const string InProcess = "in-process";
    private const string Conntrack = "conntrack";

    /// <summary>
    /// Runs <paramref name="measure"/> with Ctrl+C, SIGTERM and SIGQUIT cancelling it (it then stops its processes and
    /// removes its namespaces and files on the way out); a misbehaving cluster is reported, exit 1.
    /// </summary>
    private static async Task<(DemoResult? Result, Dictionary<string, object>? Doc, int Code)> WithCleanupAsync(
        Func<CancellationToken, Task<(DemoResult, Dictionary<string, object>)>> measure, CancellationToken token)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        void Stop(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            cts.Cancel();
        }

        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Stop);
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Stop);
        using var sigquit = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGQUIT, Stop);
        try
        {
            var (result, doc) = await measure(cts.Token).ConfigureAwait(false);
            return (result, doc, CommandLine.Success);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("clustersync: bench failover: interrupted; processes stopped, namespaces and files removed").ConfigureAwait(false);
            return (null, null, CommandLine.Failure);
        }
        catch (DemoException ex)
        {
            await Console.Error.WriteLineAsync($"clustersync: bench failover: {ex.Message}").ConfigureAwait(false);
            return (null, null, CommandLine.Failure);
        }
    }
}
