using Xunit.Abstractions;

namespace ClusterSync.Simulation.Tests;

public sealed class ExploreTests(ITestOutputHelper output)
{
    [Fact]
    public void Explore()
    {
        int first = int.Parse(Environment.GetEnvironmentVariable("SIM_FIRST") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        int count = int.Parse(Environment.GetEnvironmentVariable("SIM_COUNT") ?? "20", System.Globalization.CultureInfo.InvariantCulture);
        if (Environment.GetEnvironmentVariable("SIM_TRACE") is { } seedText)
        {
            var one = Simulator.Run(int.Parse(seedText, System.Globalization.CultureInfo.InvariantCulture), trace: true);
            foreach (var line in one.Schedule)
            {
                output.WriteLine("schedule: " + line);
            }

            foreach (var line in one.Trace!)
            {
                output.WriteLine(line);
            }

            return;
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = Simulator.Soak(first, count, 2);
        foreach (var r in results.Where(r => !r.Passed))
        {
            output.WriteLine($"set {r.Seed}: {string.Join(" ", r.Violations.Select(v => v.Invariant).Distinct())}");
        }

        foreach (var r in Environment.GetEnvironmentVariable("SIM_QUIET") is null ? results : [])
        {
            output.WriteLine($"seed {r.Seed}: {(r.Passed ? "ok" : r.First!.ToString())} | {r.Stats}");
            foreach (var v in r.Violations.Skip(1))
            {
                output.WriteLine($"     also {v}");
            }
        }

        output.WriteLine($"{count} seeds in {sw.Elapsed.TotalSeconds:F1}s");
        foreach (var g in results.SelectMany(r => r.Violations.Select(v => v.Invariant).Distinct().Select(i => (i, r.Seed))).GroupBy(x => x.i))
        {
            output.WriteLine($"{g.Key}: {g.Count()} seeds, e.g. {string.Join(",", g.Take(8).Select(x => x.Seed))}");
        }
    }
}
