using Xunit.Abstractions;

namespace ClusterSync.Simulation.Tests;

public sealed class ExploreTests(ITestOutputHelper output)
{
    [Fact]
    public void Explore()
    {
        int first = int.Parse(Environment.GetEnvironmentVariable("SIM_FIRST") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        int count = int.Parse(Environment.GetEnvironmentVariable("SIM_COUNT") ?? "20", System.Globalization.CultureInfo.InvariantCulture);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = Simulator.Soak(first, count, 2);
        foreach (var r in results)
        {
            output.WriteLine($"seed {r.Seed}: {(r.Passed ? "ok" : r.First!.ToString())} | {r.Stats}");
            foreach (var v in r.Violations.Skip(1))
            {
                output.WriteLine($"     also {v}");
            }
        }

        output.WriteLine($"{count} seeds in {sw.Elapsed.TotalSeconds:F1}s");
    }
}
