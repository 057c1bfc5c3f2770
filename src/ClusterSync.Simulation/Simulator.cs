namespace ClusterSync.Simulation;

/// <summary>Runs seeds: one (<see cref="Run"/>, deterministic: the same seed gives the same result) or many (<see cref="Soak"/>).</summary>
internal static class Simulator
{
    public static SimulationResult Run(int seed, bool trace = false)
    {
        using var cluster = new SimCluster(Scenario.Draw(seed), trace);
        return cluster.Run();
    }

    /// <summary>Runs <paramref name="count"/> seeds from <paramref name="firstSeed"/> on up to <paramref name="parallelism"/> threads; results in seed order.</summary>
    public static IReadOnlyList<SimulationResult> Soak(int firstSeed, int count, int parallelism = 1, IProgress<SimulationResult>? progress = null)
    {
        var results = new SimulationResult[count];
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, i =>
        {
            results[i] = Run(firstSeed + i);
            progress?.Report(results[i]);
        });
        return results;
    }
}
