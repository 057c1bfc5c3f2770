using System.Globalization;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Adaptive.Model;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>What <c>clustersync simulate</c> computed: the static policies, the controller replays per budget, the frontier points.</summary>
public sealed record SimulationRun(
    SimulationReport Report,
    PolicyResult Static3s,
    IReadOnlyList<ReplayResult> Budgets,
    ControllerFrontierResult? Frontier,
    TimeSpan Warmup,
    bool Guard,
    double NeverSyncClassShare,
    bool ServiceClasses,
    ServiceBoundResult? ServiceBound = null);

/// <summary><c>clustersync simulate</c>: static policies from <see cref="PolicySimulator"/>, adaptive from <see cref="ControllerReplay"/>.</summary>
public static class Simulation
{
    public static SimulationRun Run(IReadOnlyList<TraceRecord> records, LifetimeModel? model, IReadOnlyList<double> budgets, TimeSpan warmup, bool guard, bool modelOnly, bool serviceClasses = false, bool frontierPoints = true,
        AdaptiveOptions? options = null)
    {
        var sim = new PolicySimulator(records, model);
        var report = sim.Run(modelOnly ? budgets : []);
        var policies = report.Policies.Select(p => p.Name.StartsWith("adaptive@", StringComparison.Ordinal) ? p with { Name = "model-only" + p.Name["adaptive".Length..] } : p).ToList();
        var static3 = policies.Single(p => p.Name == "static-3s");
        // The in-sample best-per-service reference: apart from the policies, as it is not one a node can run.
        var bound = ServiceBound.Compute(records, static3.Messages, static3.ExposureSeconds);
        var baseOptions = options ?? new AdaptiveOptions();
        var replay = new ControllerReplay(records, serviceClasses ? new ClusterSync.Policy.PolicyOptions() : ControllerReplay.UniformPolicy(3));
        var predictor = model is null ? null : new LifetimeModelPredictor(model);
        ReplayResult Replay(double b) => replay.Run($"adaptive@{b.ToString("0.#####", CultureInfo.InvariantCulture)}", baseOptions with { LossBudget = b, Guard = guard }, predictor, warmup);

        var runs = budgets.Select(Replay).ToList();
        foreach (var r in runs)
        {
            policies.Add(new PolicyResult(r.Name, r.Messages, r.Bytes, r.ExposureSeconds, sim.SpanSeconds > 0 ? r.ExposureSeconds / sim.SpanSeconds : 0));
        }

        var frontier = records.Count == 0 || !frontierPoints ? null : ControllerFrontier.Search(Replay, static3.Messages, static3.ExposureSeconds);
        return new SimulationRun(report with { Policies = policies }, static3, runs, frontier, warmup, guard, runs.FirstOrDefault()?.NeverSyncClassShare ?? 0, serviceClasses, bound);
    }

    /// <summary>
    /// One more replay at <paramref name="budget"/> whose every outcome also goes to <paramref name="tap"/> (a node's
    /// telemetry recorder: <c>simulate --telemetry</c>), so a trace replayed here leaves the telemetry a node fed it would.
    /// </summary>
    public static ReplayResult Record(IReadOnlyList<TraceRecord> records, LifetimeModel? model, double budget, TimeSpan warmup, bool guard,
        bool serviceClasses, ClusterSync.Policy.IConnectionOutcomeSink tap, AdaptiveOptions? options = null)
    {
        var replay = new ControllerReplay(records, serviceClasses ? new ClusterSync.Policy.PolicyOptions() : ControllerReplay.UniformPolicy(3));
        var predictor = model is null ? null : new LifetimeModelPredictor(model);
        return replay.Run($"adaptive@{budget.ToString("0.#####", CultureInfo.InvariantCulture)}", (options ?? new AdaptiveOptions()) with { LossBudget = budget, Guard = guard },
            predictor, warmup, tap: tap);
    }

    /// <summary>One more replay at <paramref name="budget"/> that writes the budget loop's state once a minute of trace time to <paramref name="log"/> (<c>simulate --price-log</c>).</summary>
    public static ReplayResult LogPrice(IReadOnlyList<TraceRecord> records, LifetimeModel? model, double budget, TimeSpan warmup, bool guard,
        bool serviceClasses, TextWriter log, AdaptiveOptions? options = null)
    {
        var replay = new ControllerReplay(records, serviceClasses ? new ClusterSync.Policy.PolicyOptions() : ControllerReplay.UniformPolicy(3));
        var predictor = model is null ? null : new LifetimeModelPredictor(model);
        return replay.Run($"adaptive@{budget.ToString("0.#####", CultureInfo.InvariantCulture)}", (options ?? new AdaptiveOptions()) with { LossBudget = budget, Guard = guard },
            predictor, warmup, priceLog: log);
    }

    /// <summary>The service classes a replay classifies by (for a recorder attached to it).</summary>
    public static IReadOnlyList<ClusterSync.Policy.ServiceClassDefinition> ReplayClasses(bool serviceClasses)
        => new ClusterSync.Policy.ServiceClassCatalog(serviceClasses ? new ClusterSync.Policy.PolicyOptions() : ControllerReplay.UniformPolicy(3)).Classes;

    /// <summary>The frontier plot: one static delay swept, the oracle, the controller at the swept budgets, the named policies.</summary>
    public static string Plot(string path, IReadOnlyList<TraceRecord> records, LifetimeModel? model, SimulationRun run)
    {
        var sim = new PolicySimulator(records, model);
        var controller = run.Frontier?.Sweep.Select(r => new FrontierPoint(r.Budget, r.Messages, r.ExposureSeconds)).ToList() ?? [];
        return Plots.Frontier(path, sim, run.Report, controller, "adaptive (controller in the loop, budget swept)");
    }
}
