namespace ClusterSync.Simulation;

/// <summary>Runs seeds: one (<see cref="Run"/>, deterministic: the same seed gives the same result) or many (<see cref="Soak"/>).</summary>
public static class Simulator
{
    public static SimulationResult Run(int seed, bool trace = false)
    {
        using var cluster = new SimCluster(Scenario.Draw(seed), trace);
        return cluster.Run();
    }

    /// <summary>
    /// Runs <paramref name="count"/> seeds from <paramref name="firstSeed"/> on <paramref name="parallelism"/> threads of
    /// its own (not the thread pool: a run waits for its full syncs, which run on the pool); results in seed order.
    /// </summary>
    public static IReadOnlyList<SimulationResult> Soak(int firstSeed, int count, int parallelism = 1, IProgress<SimulationResult>? progress = null)
    {
        var results = new SimulationResult[count];
        int next = -1;
        var workers = new Thread[Math.Clamp(parallelism, 1, Math.Max(1, count))];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = new Thread(() =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    results[i] = Run(firstSeed + i);
                    progress?.Report(results[i]);
                }
            })
            { IsBackground = true, Name = $"soak-{w}" };
            workers[w].Start();
        }

        foreach (var t in workers)
        {
            t.Join();
        }

        return results;
    }
}
