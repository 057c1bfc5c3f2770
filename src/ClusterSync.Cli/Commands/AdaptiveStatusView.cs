using System.Globalization;
using ClusterSync.Node.Runtime;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>The adaptive part of <c>clustersync status</c>: exposure now, the model in use, the feedback loop, per-class lifetimes.</summary>
internal static class AdaptiveStatusView
{
    public static void Render(NodeStatus s, IAnsiConsole console)
    {
        var c = CultureInfo.InvariantCulture;
        var t = new Spectre.Console.Table().Title("Adaptive mode").AddColumn("Field").AddColumn("Value");
        t.AddRow("Exposure now", Markup.Escape($"{s.Exposure.Connections.ToString("N0", c)} connections at risk (live, not yet replicated; {s.Exposure.ExposureSeconds.ToString("N1", c)} s summed age)"));
        var a = s.Adaptive;
        if (a is null)
        {
            t.AddRow("Adaptive", "off (class policies decide)");
        }
        else
        {
            t.AddRow("Model", Markup.Escape(a.Model is null
                ? $"none: cold start (online per-class quantiles, static policy as floor){(a.ColdStartReason is null ? "" : $"; {a.ColdStartReason}")}"
                : $"{a.Model}{(a.ModelSource is null ? "" : $" ({a.ModelSource})")}, trained {a.ModelTrainedAt ?? "-"}: {a.ModelPath}, loaded {a.ModelLoadedAt?.ToString("u", c)}"));
            t.AddRow("Model reloads", Markup.Escape($"{a.ModelReloads.ToString(c)} loaded, {a.ModelReloadsRefused.ToString(c)} refused{(a.LastReloadError is null ? "" : $" (last: {a.LastReloadError})")}"));
            t.AddRow("Loss budget / realized", Markup.Escape($"{a.LossBudget.ToString("0.####", c)} / {(a.RealizedLoss is { } r ? r.ToString("0.####", c) : "-")} of connection-seconds unreplicated"));
            t.AddRow("Price", Markup.Escape($"{a.Price.ToString("0.####", c)} s of exposure per synced connection"));
            t.AddRow("Decisions", Markup.Escape(string.Join(", ", a.Decisions.Select(kv => $"{kv.Key} {kv.Value.ToString("N0", c)}"))));
            if (a.Comparison is { } cmp)
            {
                t.AddRow("vs static (last hour)", Markup.Escape(Vs(cmp.LastHour)));
                t.AddRow("vs static (since start)", Markup.Escape(Vs(cmp.SinceStart)));
                foreach (var k in cmp.Classes.Where(k => k.SinceStart.Connections > 0))
                {
                    t.AddRow(Markup.Escape($"  vs static {k.StaticDelaySeconds.ToString("0.###", c)} s, {k.Class}"), Markup.Escape(
                        $"last hour: {Vs(k.LastHour)}; guard: {(k.RegionsGuarded >= 16 ? "whole class on the static policy" : $"{k.RegionsGuarded.ToString(c)} model regions on the static policy")}"));
                }
            }

            t.AddRow("Outcomes / drift hints", Markup.Escape($"{a.OutcomesObserved.ToString("N0", c)} / {a.DriftHints.ToString(c)}"));
            foreach (var k in a.Classes.Where(k => k.Outcomes > 0 || k.NeverSkip))
            {
                t.AddRow(Markup.Escape($"  class {k.Name}"), Markup.Escape(
                    $"{(k.NeverSkip ? "never-skip, " : "")}{k.Outcomes.ToString("N0", c)} outcomes, lifetime p50/p90/p99 {F(k.LifetimeP50Seconds)}/{F(k.LifetimeP90Seconds)}/{F(k.LifetimeP99Seconds)} s, " +
                    $"P(> {k.CheckpointSeconds.ToString("0.###", c)} s) observed {F(k.ObservedLongShare)} predicted {F(k.PredictedLongShare)}{(k.DriftFlagged ? " DRIFT" : "")}"));
            }
        }

        if (s.Telemetry is { } tel)
        {
            t.AddRow("Telemetry", Markup.Escape($"{tel.Path}: {tel.Written.ToString("N0", c)} records written of {tel.Ended.ToString("N0", c)} ended, {tel.Dropped.ToString("N0", c)} dropped, {tel.SegmentsDeleted.ToString("N0", c)} segments aged out"));
        }

        console.Write(t);

        string F(double? v) => v is { } x ? x.ToString("0.###", c) : "-";

        string Vs(BaselineWindowDocument w) => w.Connections == 0 ? "no ended connections yet" :
            $"messages {w.AdaptiveMessages.ToString("N0", c)} vs {w.StaticMessages.ToString("N0", c)} ({P(w.MessagesRatio)}), exposure {w.AdaptiveExposureSeconds.ToString("N0", c)} s vs {w.StaticExposureSeconds.ToString("N0", c)} s ({P(w.ExposureRatio)}) over {w.Connections.ToString("N0", c)} connections{(w.WorseOnBoth ? " — WORSE ON BOTH" : "")}";

        string P(double? r) => r is { } x ? (100 * x).ToString("0.#", c) + " %" : "-";
    }
}
