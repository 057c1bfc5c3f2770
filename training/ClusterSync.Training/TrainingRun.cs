using System.Diagnostics;
using System.Globalization;
using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Workload.Trace;
using Microsoft.ML;

namespace ClusterSync.Training;

/// <summary>One input of a training run.</summary>
public sealed record TrainingSource(string Path, TraceFormat Format);

/// <summary>What <c>clustersync train</c> does.</summary>
public sealed record TrainingRunOptions
{
    public string Name { get; init; } = "lifetime";
    public IReadOnlyList<TrainingSource> Sources { get; init; } = [];
    public string OutputDirectory { get; init; } = "models";
    public int TestDays { get; init; }
    public int CalibrationDays { get; init; } = 1;
    public TrainerOptions Trainer { get; init; } = new();
    public bool Plots { get; init; } = true;
    public IReadOnlyList<double> Budgets { get; init; } = PolicySimulator.DefaultBudgets;

    /// <summary>The command line that reproduces the run (written into the model card).</summary>
    public string CommandLine { get; init; } = "";
}

/// <summary>The frontier read against static 3 s (the acceptance numbers).</summary>
public sealed record FrontierReads(
    PolicyResult Static3,
    PolicyResult AdaptiveAtStatic3Messages,
    PolicyResult AdaptiveAtStatic3Exposure,
    PolicyResult OracleAtStatic3Messages,
    PolicyResult OracleAtStatic3Exposure)
{
    public double AdaptiveExposureRatio => Ratio(AdaptiveAtStatic3Messages.ExposureSeconds, Static3.ExposureSeconds);
    public double AdaptiveMessagesRatio => Ratio(AdaptiveAtStatic3Exposure.Messages, Static3.Messages);
    public double OracleExposureRatio => Ratio(OracleAtStatic3Messages.ExposureSeconds, Static3.ExposureSeconds);
    public double OracleMessagesRatio => Ratio(OracleAtStatic3Exposure.Messages, Static3.Messages);

    /// <summary>At no more messages than static 3 s, at most half its exposure.</summary>
    public bool ExposureTargetMet => AdaptiveAtStatic3Messages.Messages <= Static3.Messages && AdaptiveExposureRatio <= 0.5;

    /// <summary>At no more exposure than static 3 s, fewer messages.</summary>
    public bool MessagesTargetMet => AdaptiveAtStatic3Exposure.ExposureSeconds <= Static3.ExposureSeconds && AdaptiveAtStatic3Exposure.Messages < Static3.Messages;

    private static double Ratio(double a, double b) => b > 0 ? a / b : double.NaN;

    public static FrontierReads Compute(PolicySimulator sim)
    {
        var s3 = sim.Static("static-3s", 3);
        var (_, atMsg) = sim.AdaptiveAtMessages(s3.Messages);
        var (_, atExp) = sim.AdaptiveAtExposure(s3.ExposureSeconds);
        // Oracle: sync iff lifetime > t. At equal messages: t = 3 s exactly. At equal exposure: the largest t within it.
        var oMsg = sim.Oracle("oracle", 3);
        PolicyResult oExp = sim.Oracle("oracle", 0);
        foreach (var t in sim.OracleFrontier().Where(p => p.ExposureSeconds <= s3.ExposureSeconds).Select(p => p.Knob))
        {
            var r = sim.Oracle("oracle", t);
            if (r.Messages < oExp.Messages)
            {
                oExp = r;
            }
        }

        return new FrontierReads(s3, atMsg with { Name = "adaptive (= static-3s messages)" }, atExp with { Name = "adaptive (= static-3s exposure)" },
            oMsg with { Name = "oracle (= static-3s messages)" }, oExp with { Name = "oracle (= static-3s exposure)" });
    }
}

/// <summary>Everything a run produced.</summary>
public sealed record TrainingRunResult(
    string ModelPath,
    string CardPath,
    IReadOnlyList<string> PlotPaths,
    SimulationReport TestReport,
    FrontierReads Reads,
    TimeSplit Split,
    TestMetrics Metrics,
    TimeSpan TrainTime);

/// <summary>Held-out quality of the model.</summary>
public sealed record TestMetrics(double RmseLogLifetime, double RSquaredLogLifetime, double BrierAlive3s, IReadOnlyList<CalibrationBin> Calibration);

/// <summary>Predicted P(lifetime &gt; 3 s) against the observed share, over test connections grouped by prediction.</summary>
public sealed record CalibrationBin(double Predicted, double Observed, long Count);

/// <summary>load → split by time → features → train → calibrate → evaluate on later days → model zip + card + plots.</summary>
public static class TrainingRun
{
    public static TrainingRunResult Run(TrainingRunOptions options, Action<string, double>? progress = null)
    {
        progress ??= static (_, _) => { };
        var all = new List<TraceRecord>();
        for (int i = 0; i < options.Sources.Count; i++)
        {
            var s = options.Sources[i];
            progress($"load {System.IO.Path.GetFileName(s.Path.TrimEnd('/'))}", 0.05 + (0.15 * i / options.Sources.Count));
            all.AddRange(TraceLoader.Load(s.Path, s.Format));
        }

        all.Sort(static (x, y) => x.StartUnixSeconds.CompareTo(y.StartUnixSeconds));
        progress("split by time", 0.2);
        var split = TimeSplit.ByDays(all, options.TestDays, options.CalibrationDays);
        if (split.Train.Count == 0 || split.Calibration.Count == 0 || split.Test.Count == 0)
        {
            throw ConfigurationErrors.At("training data", $"the split left an empty part (train {split.Train.Count}, calibrate {split.Calibration.Count}, test {split.Test.Count}); give more days or fewer --test-days");
        }

        var ml = new MLContext(seed: options.Trainer.Seed);
        progress($"train FastTree on {split.Train.Count:N0} connections", 0.25);
        var sw = Stopwatch.StartNew();
        var (transformer, schema) = LifetimeTrainer.TrainTrees(ml, split.Train, options.Trainer);
        sw.Stop();

        progress("calibrate", 0.6);
        // Calibrate with ML.NET's own scores written into a temporary model; the loaded model then scores with the
        // compiled trees, which its load-time self-check holds to ML.NET's.
        string modelPath = System.IO.Path.Combine(options.OutputDirectory, options.Name + ".zip");
        string sources = string.Join("; ", options.Sources.Select(s => $"{s.Format.ToString().ToLowerInvariant()}: {s.Path}"));
        // The provisional model (no calibration yet) never takes the final name: a node may be watching that file.
        var provisional = LifetimeTrainer.Manifest(options.Name, [new LifetimeBucket { Survival = new double[LifetimeModel.DelayGrid.Count], Exposure = new double[LifetimeModel.DelayGrid.Count] }], options.Trainer, sources);
        string provisionalPath = System.IO.Path.Combine(options.OutputDirectory, $".{options.Name}.provisional.zip");
        LifetimeTrainer.Write(provisionalPath, ml, transformer, schema, provisional);
        LifetimeModel scorer;
        try
        {
            scorer = LifetimeModel.Load(provisionalPath);
        }
        finally
        {
            File.Delete(provisionalPath);
        }

        var buckets = LifetimeTrainer.Calibrate(f => scorer.Score(f), split.Calibration, options.Trainer.Buckets);
        var manifest = LifetimeTrainer.Manifest(options.Name, buckets, options.Trainer, sources);
        LifetimeTrainer.Write(modelPath, ml, transformer, schema, manifest);
        var model = LifetimeModel.Load(modelPath);

        progress($"evaluate on {split.Test.Count:N0} held-out connections", 0.7);
        var metrics = Metrics(model, split.Test);
        var sim = new PolicySimulator(split.Test, model);
        var report = sim.Run(options.Budgets);
        var reads = FrontierReads.Compute(sim);

        progress("plots and model card", 0.9);
        var plots = new List<string>();
        if (options.Plots)
        {
            plots.Add(Plots.Frontier(System.IO.Path.Combine(options.OutputDirectory, options.Name + ".frontier.png"), sim, report));
            plots.Add(Plots.Calibration(System.IO.Path.Combine(options.OutputDirectory, options.Name + ".calibration.png"), metrics.Calibration));
        }

        string cardPath = System.IO.Path.Combine(options.OutputDirectory, options.Name + ".md");
        File.WriteAllText(cardPath, ModelCard.Render(options, manifest, split, metrics, report, reads, sw.Elapsed, plots, all.Count));
        progress("done", 1.0);
        return new TrainingRunResult(modelPath, cardPath, plots, report, reads, split, metrics, sw.Elapsed);
    }

    public static TestMetrics Metrics(LifetimeModel model, IReadOnlyList<TraceRecord> test)
    {
        int i3 = LifetimeModel.DelayGrid.ToList().IndexOf(3);
        double se = 0, sum = 0, sumSq = 0, brier = 0;
        var bins = new (double P, double O, long N)[10];
        foreach (var r in test)
        {
            var est = model.Predict(FeatureExtractor.FromTrace(r));
            double y = LifetimeTrainer.Label(r.DurationSeconds);
            se += (est.Score - y) * (est.Score - y);
            sum += y;
            sumSq += y * y;
            double p = model.ProbabilityAlive(est, i3);
            double o = r.DurationSeconds > 3 ? 1 : 0;
            brier += (p - o) * (p - o);
            int b = Math.Min(9, (int)(p * 10));
            bins[b] = (bins[b].P + p, bins[b].O + o, bins[b].N + 1);
        }

        int n = Math.Max(1, test.Count);
        double variance = (sumSq / n) - ((sum / n) * (sum / n));
        return new TestMetrics(Math.Sqrt(se / n), variance > 0 ? 1 - (se / n / variance) : double.NaN, brier / n,
            bins.Where(b => b.N > 0).Select(b => new CalibrationBin(b.P / b.N, b.O / b.N, b.N)).ToList());
    }

    public static string Format(double v, string format = "0.###") => v.ToString(format, CultureInfo.InvariantCulture);
}
