using System.Diagnostics;
using Xunit.Abstractions;

namespace ClusterSync.Simulation.Tests;

public sealed class SimulatorTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(1)]
    [InlineData(147)]
    [InlineData(865)]
    public void Run_SameSeedTwice_SameViolationsStatsAndTrace(int seed)
    {
        var a = Simulator.Run(seed, trace: true);
        var b = Simulator.Run(seed, trace: true);

        Assert.Equal(a.Violations, b.Violations);
        Assert.Equal(a.Stats, b.Stats);
        Assert.Equal(a.Trace, b.Trace);
    }

    [Fact]
    public void Run_DifferentSeeds_DifferentSchedules()
    {
        var a = Simulator.Run(11);
        var b = Simulator.Run(12);

        Assert.NotEqual(a.Schedule, b.Schedule);
        Assert.NotEqual(a.Stats.Digest, b.Stats.Digest);
    }

    /// <summary>Fault-free runs must pass: the invariants raise no false alarm on a healthy cluster (80 seeds checked once; 12 kept).</summary>
    public static TheoryData<int> FaultFreeSeeds() => [.. Enumerable.Range(1, 12)];

    [Theory]
    [MemberData(nameof(FaultFreeSeeds))]
    public void Run_ChurnWithoutFaults_NoViolations(int seed)
    {
        var scenario = Scenario.Draw(seed) with { Faults = [] };
        using var cluster = new SimCluster(scenario, trace: true);

        var result = cluster.Run();

        Assert.True(result.Passed, string.Join(Environment.NewLine, result.Violations.Concat<object>(result.Trace!.TakeLast(40))));
        Assert.True(result.Stats.ChangesSubmitted > 100, $"only {result.Stats.ChangesSubmitted} changes");
    }

    [Fact]
    public void Run_OneStandbyCrashAndRestart_StandbyRejoinsByFullSyncAndConverges()
    {
        var scenario = Scenario.Draw(7) with
        {
            Members = 3,
            Priorities = [0, 100, 100, 100],
            Faults = [new FaultEvent(TimeSpan.FromSeconds(1), FaultKind.Crash, 3, 1, 0, TimeSpan.FromMilliseconds(500), TargetsActive: false)],
        };
        using var cluster = new SimCluster(scenario, trace: true);

        var result = cluster.Run();

        Assert.True(result.Passed, string.Join(Environment.NewLine, result.Violations.Concat<object>(result.Trace!)));
        Assert.Contains(result.Trace!, l => l.Contains("m3.1 pulls from m1: Completed", StringComparison.Ordinal));
        Assert.Equal(1, result.Stats.Crashes);
    }

    /// <summary>
    /// The CI soak: 300 seeds must finish within three minutes on two loaded cores and the simulator itself must not fail.
    /// Violations are printed; <see cref="Soak_CiSeeds_NoViolations"/> requires none.
    /// </summary>
    [Fact]
    public void Soak_CiSeeds_FinishWithinThreeMinutesWithoutSimulatorErrors()
    {
        var sw = Stopwatch.StartNew();

        var results = Simulator.Soak(CiFirstSeed, CiSeeds, Environment.ProcessorCount);

        sw.Stop();
        output.WriteLine($"{CiSeeds} seeds in {sw.Elapsed.TotalSeconds:F1} s ({CiSeeds / sw.Elapsed.TotalSeconds:F1} seeds/s), {results.Count(r => !r.Passed)} failing");
        foreach (var r in results.Where(r => !r.Passed))
        {
            output.WriteLine($"seed {r.Seed}: {r.First}");
        }

        Assert.Equal(CiSeeds, results.Count);
        Assert.DoesNotContain(results, r => r.Violations.Any(v => v.Invariant == Invariants.SimulatorError));
        Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), $"{CiSeeds} seeds took {sw.Elapsed}");
    }

    [Fact]
    public void Soak_CiSeeds_NoViolations()
    {
        var results = Simulator.Soak(CiFirstSeed, CiSeeds, Environment.ProcessorCount);

        Assert.All(results, r => Assert.True(r.Passed, $"seed {r.Seed}: {r.First}"));
    }

    private const int CiFirstSeed = 1;
    private const int CiSeeds = 300;
}

public sealed class SoakTests
{
    [Fact]
    public void Soak_InParallel_SameResultsAsOneByOne()
    {
        var parallel = Simulator.Soak(140, 12, parallelism: 3);

        var sequential = Enumerable.Range(140, 12).Select(s => Simulator.Run(s)).ToList();

        Assert.Equal(sequential.Select(r => r.Seed), parallel.Select(r => r.Seed));
        Assert.Equal(sequential.Select(r => r.Stats), parallel.Select(r => r.Stats));
        Assert.Equal(sequential.SelectMany(r => r.Violations), parallel.SelectMany(r => r.Violations));
    }
}
