namespace ClusterSync.Training;

/// <summary>PNG plots of a training run (ScottPlot, headless through SkiaSharp).</summary>
internal static class Plots
{
    public static string Frontier(string path, PolicySimulator sim, SimulationReport report, IReadOnlyList<FrontierPoint>? controller = null, string? controllerLabel = null)
    {
        var plot = new ScottPlot.Plot();
        double total = Math.Max(1e-9, sim.TotalLifetimeSeconds);
        void Line(IEnumerable<FrontierPoint> points, string label)
        {
            var p = points.OrderBy(x => x.Messages).ToArray();
            var s = plot.Add.Scatter(p.Select(x => x.Messages / 1000.0).ToArray(), p.Select(x => 100 * x.ExposureSeconds / total).ToArray());
            s.LegendText = label;
            s.MarkerSize = 3;
        }

        Line(sim.StaticFrontier(), "one static delay (0 s … ∞)");
        Line(sim.OracleFrontier(), "oracle (knows each lifetime)");
        if (controller is { Count: > 0 })
        {
            Line(controller, controllerLabel ?? "adaptive");
        }
        else
        {
            try
            {
                Line(sim.AdaptiveFrontier(), "adaptive (model)");
            }
            catch (InvalidOperationException)
            {
                // No model: static and oracle only.
            }
        }

        foreach (var p in report.Policies.Where(p => !p.Name.StartsWith("adaptive@", StringComparison.Ordinal) && !p.Name.StartsWith("model-only@", StringComparison.Ordinal)))
        {
            var m = plot.Add.Marker(p.Messages / 1000.0, 100 * p.ExposureSeconds / total);
            m.LegendText = p.Name;
            m.MarkerSize = 10;
        }

        plot.Title("Sync cost vs exposure (held-out data)");
        plot.XLabel("messages (thousands)");
        plot.YLabel("exposure (% of connection-seconds)");
        plot.ShowLegend();
        plot.SavePng(path, 900, 600);
        return path;
    }

    public static string Calibration(string path, IReadOnlyList<CalibrationBin> bins)
    {
        var plot = new ScottPlot.Plot();
        var diag = plot.Add.Line(0, 0, 1, 1);
        diag.LegendText = "perfect";
        var s = plot.Add.Scatter(bins.Select(b => b.Predicted).ToArray(), bins.Select(b => b.Observed).ToArray());
        s.LegendText = "model";
        s.MarkerSize = 8;
        plot.Title("Calibration of P(lifetime > 3 s) on held-out data");
        plot.XLabel("predicted");
        plot.YLabel("observed");
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.ShowLegend();
        plot.SavePng(path, 600, 600);
        return path;
    }
}
