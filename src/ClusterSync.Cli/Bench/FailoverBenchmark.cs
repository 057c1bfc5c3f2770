using System.CommandLine;
using ClusterSync.Cli.Demo;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench failover [--entries N] [--rate R] [--heartbeat-ms H] [--dead-after K] [--json]</c>: the demo's
/// cluster (three <c>clustersync node</c> processes on loopback, encrypted, heartbeat H ms (100), dead after K missed (3)) with every connection
/// synchronized at once; the data plane fills the Active until the member that will take over holds N connections,
/// keeps changing them, and the Active is SIGKILLed under that churn.
/// <c>failover_ms</c> = the new Active's own "serving" timestamp (Unix ms, taken when it announced Active after
/// committing its replica) minus the kill time (Unix ms, taken just before <c>kill(2)</c>), same machine clock;
/// <c>promoting_ms</c>, <c>first_commit_ms</c> and <c>last_commit_ms</c> the same for its decision to take over (it
/// announced Promoting), the first connection handed to its data plane and the last (its /failover timestamps).
/// </summary>
internal static class FailoverBenchmark
{
    public static Command Create()
    {
        var entries = new Option<int>("--entries") { Description = "Connections the new Active must commit.", DefaultValueFactory = _ => 100_000 };
        var rate = new Option<double>("--rate") { Description = "Changes per second into the Active once it holds N connections (the churn at the kill).", DefaultValueFactory = _ => 5_000 };
        var heartbeat = new Option<int>("--heartbeat-ms") { Description = "The members' heartbeat interval in ms (sync.heartbeatInterval).", DefaultValueFactory = _ => 100 };
        var deadAfter = new Option<int>("--dead-after") { Description = "Heartbeats missed before a member counts as dead (sync.deadAfterMissedHeartbeats).", DefaultValueFactory = _ => 3 };
        return BenchCommand.Create("failover", "Failover time with N connections: the Active SIGKILLed under churn, the new Active serving with its replica committed.", [entries, rate, heartbeat, deadAfter], async (parse, bench, token) =>
        {
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
            };
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
                ["promoting_ms"] = result.PromotingMs,
                ["first_commit_ms"] = result.FirstCommitMs,
                ["last_commit_ms"] = result.LastCommitMs,
                ["lost_synced"] = result.Tally.Total.LostSynced,
                ["alive_at_failover"] = result.Tally.Total.Alive,
                ["synced_at_failover"] = result.Tally.Total.Synced,
                ["changes_per_second_at_kill"] = result.ChangesPerSecondAtKill,
                ["heartbeat_ms"] = hb,
                ["dead_interval_ms"] = hb * missed,
                ["premature_takeover"] = result.PrematureTakeover,
                ["extra_takeovers"] = result.ExtraTakeovers,
                ["survivors"] = result.SurvivorsSeen,
            };
            return bench.Report(doc, 28, DemoCommand.Passed(result) && result.Committed >= n);
        });
    }
}
