using System.Globalization;
using System.Text;
using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;

namespace ClusterSync.Training;

/// <summary>The model card: markdown next to the model zip.</summary>
public static class ModelCard
{
    public static string Render(TrainingRunOptions options, ModelManifest manifest, TimeSplit split, TestMetrics metrics,
        SimulationReport report, FrontierReads reads, TimeSpan trainTime, IReadOnlyList<string> plots, int totalConnections)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"# Model card: {manifest.Name}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Trained {manifest.TrainedAtUtc} by `{(options.CommandLine.Length > 0 ? options.CommandLine : "clustersync train")}`.");
        sb.AppendLine();
        sb.AppendLine("## What it predicts and why this shape");
        sb.AppendLine("At connection start, ln(lifetime) from the features below (ML.NET FastTree regression). The score alone is not a");
        sb.AppendLine("probability, so a calibration table from later, held-out days maps score ranges (quantile buckets) to the observed");
        sb.AppendLine("P(lifetime > d) and E[min(lifetime, d)] for every delay d of the grid. The policy needs exactly those two numbers:");
        sb.AppendLine("a delay d costs P(lifetime > d) syncs and E[min(lifetime, d)] exposure seconds, so the adaptive policy picks per");
        sb.AppendLine("connection the d minimizing `price · P(sync) + exposure`, and the price is set so that realized exposure meets the");
        sb.AppendLine("loss budget. One regression plus a table costs one tree walk per connection (the ≤ 2 µs budget), where one");
        sb.AppendLine("classifier per threshold would cost one walk per threshold, and the table is calibrated by construction.");
        sb.AppendLine();
        sb.AppendLine(inv, $"- trainer: {manifest.Trainer}; training took {trainTime.TotalSeconds:0.0} s");
        sb.AppendLine(inv, $"- feature version {manifest.FeatureVersion}; {manifest.Buckets.Count} calibration buckets; delay grid {string.Join(", ", LifetimeModel.DelayGrid.Select(d => double.IsInfinity(d) ? "never" : d.ToString("0.#", inv) + " s"))}");
        sb.AppendLine();
        sb.AppendLine("## Data");
        sb.AppendLine(inv, $"- sources: {manifest.TrainingData}");
        sb.AppendLine(inv, $"- {totalConnections:N0} connections; split {split.Description}");
        sb.AppendLine(inv, $"- train {split.Train.Count:N0}, calibrate {split.Calibration.Count:N0}, test {split.Test.Count:N0} connections (never a random row split)");
        sb.AppendLine();
        sb.AppendLine("## Features (known at connection start)");
        sb.AppendLine("| # | name |");
        sb.AppendLine("|---|---|");
        for (int i = 0; i < FeatureSchema.Count; i++)
        {
            sb.AppendLine(inv, $"| {i} | {FeatureSchema.Names[i]} |");
        }

        sb.AppendLine();
        sb.AppendLine("## Metrics on the test days");
        sb.AppendLine(inv, $"- RMSE of ln(lifetime): {metrics.RmseLogLifetime:0.###}; R²: {metrics.RSquaredLogLifetime:0.###}");
        sb.AppendLine(inv, $"- Brier score of P(lifetime > 3 s): {metrics.BrierAlive3s:0.####}");
        sb.AppendLine();
        sb.AppendLine("## Calibration: P(lifetime > 3 s), predicted vs observed on the test days");
        sb.AppendLine("| predicted | observed | connections |");
        sb.AppendLine("|---:|---:|---:|");
        foreach (var b in metrics.Calibration)
        {
            sb.AppendLine(inv, $"| {b.Predicted:0.###} | {b.Observed:0.###} | {b.Count:N0} |");
        }

        sb.AppendLine();
        sb.AppendLine("## Policy simulation on the test days");
        sb.AppendLine(inv, $"{report.Connections:N0} connections over {report.SpanSeconds / 3600:0.#} h. Messages: 2 per synced connection (new + destroy);");
        sb.AppendLine("exposure: Σ min(lifetime, delay); expected loss: Σ exposure / span (connections a failover at a random instant loses).");
        sb.AppendLine("`adaptive@b`: the realized exposure is at most the share b of all connection-seconds.");
        sb.AppendLine();
        sb.Append(PolicyTable(report.Policies));
        sb.AppendLine();
        sb.AppendLine("## Frontier against static 3 s");
        sb.Append(FrontierTable(reads));
        sb.AppendLine();
        sb.AppendLine(inv, $"- at ≤ static-3s messages, exposure ≤ 50 % of static-3s: **{(reads.ExposureTargetMet ? "met" : "NOT met")}** ({reads.AdaptiveExposureRatio:P1}; oracle {reads.OracleExposureRatio:P1})");
        sb.AppendLine(inv, $"- at ≤ static-3s exposure, fewer messages: **{(reads.MessagesTargetMet ? "met" : "NOT met")}** ({reads.AdaptiveMessagesRatio:P1} of its messages; oracle {reads.OracleMessagesRatio:P1})");
        if (plots.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## Plots");
            foreach (var p in plots)
            {
                sb.AppendLine(inv, $"![{Path.GetFileNameWithoutExtension(p)}]({Path.GetFileName(p)})");
            }
        }

        return sb.ToString();
    }

    public static string PolicyTable(IEnumerable<PolicyResult> policies)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| policy | messages | bytes | exposure (s) | expected loss |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var p in policies)
        {
            sb.AppendLine(inv, $"| {p.Name} | {p.Messages:N0} | {p.Bytes:N0} | {p.ExposureSeconds:N0} | {p.ExpectedLoss:0.###} |");
        }

        return sb.ToString();
    }

    public static string FrontierTable(FrontierReads r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| point | messages | vs static-3s | exposure (s) | vs static-3s |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var p in new[] { r.Static3, r.AdaptiveAtStatic3Messages, r.OracleAtStatic3Messages, r.AdaptiveAtStatic3Exposure, r.OracleAtStatic3Exposure })
        {
            sb.AppendLine(inv, $"| {p.Name} | {p.Messages:N0} | {(double)p.Messages / Math.Max(1, r.Static3.Messages):P1} | {p.ExposureSeconds:N0} | {p.ExposureSeconds / Math.Max(1e-9, r.Static3.ExposureSeconds):P1} |");
        }

        return sb.ToString();
    }
}
