using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSync.Simulation;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync soak --seeds N [--first-seed S] [--parallel P] [--trace] [--json]</c>: the deterministic fault simulator
/// (src/ClusterSync.Simulation/README.md) over N seeds. Prints every failing seed with the invariant it broke; exit 1
/// when any invariant was broken, 2 on bad usage. A failing seed reproduces exactly: <c>--seeds 1 --first-seed S --trace</c>.
/// </summary>
internal static class SoakCommand
{
    public static Command Create()
    {
        var seeds = new Option<int>("--seeds") { Description = "How many seeds to run (each a few simulated seconds of faults under churn).", Required = true };
        var first = new Option<int>("--first-seed") { Description = "The first seed (default 1); seeds run from here up.", DefaultValueFactory = _ => 1 };
        var parallel = new Option<int>("--parallel") { Description = "Seeds run at once (default: the processor count).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var trace = new Option<bool>("--trace") { Description = "Print every seed's fault schedule and event trace, one seed at a time (use with --seeds 1)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: seeds, violations, failing seeds with their invariants." };
        var command = new Command("soak", "Run the deterministic fault simulator over many seeds and report broken invariants.") { seeds, first, parallel, trace, json };
        command.SetAction(parse =>
        {
            int count = parse.GetValue(seeds);
            int from = parse.GetValue(first);
            int threads = parse.GetValue(parallel);
            if (count < 1)
            {
                Console.Error.WriteLine($"clustersync: --seeds: expected a number of seeds of at least 1, found {count}");
                return CommandLine.BadInput;
            }

            if ((long)from + count - 1 > int.MaxValue)
            {
                Console.Error.WriteLine($"clustersync: --first-seed: {from} + {count} seeds passes the largest seed ({int.MaxValue})");
                return CommandLine.BadInput;
            }

            if (threads < 1)
            {
                Console.Error.WriteLine($"clustersync: --parallel: expected at least 1, found {threads}");
                return CommandLine.BadInput;
            }

            return Run(from, count, threads, parse.GetValue(trace), parse.GetValue(json));
        });
        return command;
    }

    private static int Run(int from, int count, int threads, bool trace, bool json)
    {
        var clock = Stopwatch.StartNew();
        var results = trace
            ? Enumerable.Range(from, count).Select(s => Simulator.Run(s, trace: true)).ToList()
            : Simulator.Soak(from, count, threads);
        clock.Stop();
        var failing = results.Where(r => !r.Passed).ToList();
        int violations = results.Sum(r => r.Violations.Count);
        if (json)
        {
            var doc = new SoakJson(count, from, violations, failing.Count, Math.Round(clock.Elapsed.TotalSeconds, 3),
                Math.Round(count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), 1),
                failing.Select(r => new FailingSeedJson(r.Seed, r.First!.Invariant, r.First.AtSeconds, r.First.Detail,
                    r.Violations.Select(v => v.Invariant).Distinct().ToList())).ToList());
            Console.WriteLine(JsonSerializer.Serialize(doc, SoakJsonContext.Default.SoakJson));
        }
        else
        {
            foreach (var r in failing)
            {
                Console.WriteLine($"seed {r.Seed}: {r.First}");
                foreach (var v in r.Violations.Skip(1))
                {
                    Console.WriteLine($"    also {v}");
                }
            }

            Console.WriteLine($"{count} seeds ({from}..{from + count - 1}): {violations} violations in {failing.Count} seeds, " +
                $"{clock.Elapsed.TotalSeconds:F1} s ({count / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F1} seeds/s)");
        }

        if (trace)
        {
            foreach (var r in results)
            {
                var writer = json ? Console.Error : Console.Out;
                writer.WriteLine($"--- seed {r.Seed}: fault schedule");
                foreach (var line in r.Schedule)
                {
                    writer.WriteLine(line);
                }

                writer.WriteLine($"--- seed {r.Seed}: trace (simulated seconds)");
                foreach (var line in r.Trace ?? [])
                {
                    writer.WriteLine(line);
                }
            }
        }

        return violations == 0 ? CommandLine.Success : CommandLine.Failure;
    }
}

/// <summary>One failing seed of <see cref="SoakJson"/>.</summary>
internal sealed record FailingSeedJson(int Seed, string Invariant, double AtSeconds, string Detail, IReadOnlyList<string> Invariants);

/// <summary>The <c>--json</c> document of <c>clustersync soak</c> (snake_case names, from the context's naming policy).</summary>
internal sealed record SoakJson(int Seeds, int FirstSeed, int Violations, int Failing, double Seconds, double SeedsPerSecond,
    IReadOnlyList<FailingSeedJson> FailingSeeds);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SoakJson))]
internal sealed partial class SoakJsonContext : JsonSerializerContext;
