using System.CommandLine;
using ClusterSync.Cli.Demo;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench failover [--entries N] [--rate R] [--json]</c>: the demo's cluster (three <c>clustersync node</c>
/// processes on loopback, encrypted, default timers: heartbeat 100 ms, dead after 3 missed) with every connection
/// synchronized at once; the data plane fills the Active until the member that will take over holds N connections,
/// keeps changing them, and the Active is SIGKILLed under that churn.
/// <c>failover_ms</c> = the new Active's own "serving" timestamp (Unix ms, taken when it announced Active after
/// committing its replica) minus the kill time (Unix ms, taken just before <c>kill(2)</c>), same machine clock.
/// </summary>
internal static class FailoverBenchmark
{
    public static Command Create()
    {
        var entries = new Option<int>("--entries") { Description = "Connections the new Active must commit.", DefaultValueFactory = _ => 100_000 };
        var rate = new Option<double>("--rate") { Description = "Changes per second into the Active once it holds N connections (the churn at the kill).", DefaultValueFactory = _ => 5_000 };
        return BenchCommand.Create("failover", "Failover time with N connections: the Active SIGKILLed under churn, the new Active serving with its replica committed.", [entries, rate], async (parse, bench, token) =>
        {
            int n = parse.GetValue(entries);
            double r = parse.GetValue(rate);
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
            var options = new DemoOptions { ChurnSeconds = 2, Rate = r, FillRate = 100_000, Connections = 2 * n, MinReplica = n, Policy = DemoPolicy.SyncAll, ServiceLifetimes = false };
            var (result, code) = await DemoCommand.RunWithCleanupAsync(options, Console.Error.WriteLine, token).ConfigureAwait(false);
            if (result is null)
            {
                return code;
            }

            var doc = new Dictionary<string, object>
            {
                ["entries"] = n,
                ["committed"] = result.Committed,
                ["failover_ms"] = result.FailoverMs,
                ["detection_ms"] = result.DetectionMs,
                ["lost_synced"] = result.Tally.Total.LostSynced,
                ["alive_at_failover"] = result.Tally.Total.Alive,
                ["synced_at_failover"] = result.Tally.Total.Synced,
                ["changes_per_second_at_kill"] = result.ChangesPerSecondAtKill,
                ["dead_interval_ms"] = 300,
                ["premature_takeover"] = result.PrematureTakeover,
                ["extra_takeovers"] = result.ExtraTakeovers,
                ["survivors"] = result.SurvivorsSeen,
            };
            return bench.Report(doc, 28, DemoCommand.Passed(result) && result.Committed >= n);
        });
    }
}
