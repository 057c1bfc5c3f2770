using System.CommandLine;
using ClusterSync.Cli.Bench;
using ClusterSync.Cli.Commands;
using ClusterSync.Cli.Demo;

namespace ClusterSync.Cli;

/// <summary>The <c>clustersync</c> command tree. Exit codes: 0 success, 1 the job failed, 2 bad usage or bad input.</summary>
internal static class CommandLine
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        // Commands that run a node stop cleanly on a signal at any moment, start-up included (EarlySignals).
        bool runsNode = args is ["node" or "replay", ..];
        using var signals = runsNode ? EarlySignals.Listen() : null;
        var root = new RootCommand("ClusterSync: connection-state synchronization for clusters of firewalls and NAT gateways.")
        {
            DemoCommand.Create(),
            NodeCommand.Create(),
            ReplayCommand.Create(),
            StatusCommand.Create(),
            KeygenCommand.Create(),
            PluginsCommand.Create(),
            TelemetryCommand.Create(),
            BuildBench(),
            GenerateCommand.Create(),
            SimulateCommand.Create(),
            TrainCommand.Create(),
            SoakCommand.Create(),
            AdminCommand.Create(),
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                await Console.Error.WriteLineAsync($"clustersync: {Plain(error.Message)}").ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync("Run 'clustersync --help' for usage.").ConfigureAwait(false);
            return BadInput;
        }

        try
        {
            // Our own handlers below: bad configuration is exit 2 with its messages, not a stack trace.
            // A node's signals are EarlySignals' alone: System.CommandLine's handler would answer 143 on its own
            // (its termination timeout) while the node is still stopping cleanly.
            return await parsed.InvokeAsync(new InvocationConfiguration
            {
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = runsNode ? null : TimeSpan.FromSeconds(2),
            }).ConfigureAwait(false);
        }
        catch (ConfigurationException ex)
        {
            foreach (var e in ex.Errors)
            {
                await Console.Error.WriteLineAsync($"clustersync: {e}").ConfigureAwait(false);
            }

            return BadInput;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A file the job could not read or write after its checks passed (a full disk, a file removed meanwhile):
            // the job failed; one line, no stack trace (the paths were checked up front: a bad path is exit 2).
            await Console.Error.WriteLineAsync($"clustersync: failed: {ex.Message}").ConfigureAwait(false);
            return Failure;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            await Console.Error.WriteLineAsync($"clustersync: failed: {ex}").ConfigureAwait(false);
            return Failure;
        }
    }

    /// <summary>
    /// A parser message without .NET type names: "Cannot parse argument 'x' for option '--n' as expected type
    /// 'System.Int32'." becomes "... for option '--n': expected a whole number."
    /// </summary>
    internal static string Plain(string message) => System.Text.RegularExpressions.Regex.Replace(message,
        @" as expected type '(?<type>[^']+)'\.?",
        m => ": expected " + m.Groups["type"].Value switch
        {
            var t when t.Contains("Int", StringComparison.Ordinal) || t.Contains("Byte", StringComparison.Ordinal) => "a whole number.",
            var t when t.Contains("Double", StringComparison.Ordinal) || t.Contains("Single", StringComparison.Ordinal) || t.Contains("Decimal", StringComparison.Ordinal) => "a number.",
            var t when t.Contains("Boolean", StringComparison.Ordinal) => "true or false.",
            var t when t.Contains("DirectoryInfo", StringComparison.Ordinal) => "a directory path.",
            var t when t.Contains("FileInfo", StringComparison.Ordinal) => "a file path.",
            var t when t.Contains("TimeSpan", StringComparison.Ordinal) => "a duration.",
            _ => "another kind of value.",
        });

    private static Command BuildBench()
    {
        var bench = new Command("bench", "Macro benchmarks; each prints its results (one JSON object with --json).");
        bench.Subcommands.Add(DeltaBenchmark.Create());
        bench.Subcommands.Add(FullSyncBenchmark.Create());
        bench.Subcommands.Add(FailoverBenchmark.Create());
        bench.Subcommands.Add(PredictionBenchmark.Create());
        bench.Subcommands.Add(TelemetryBenchmark.Create());
        bench.Subcommands.Add(CommitBenchmark.Create());
        return bench;
    }
}
