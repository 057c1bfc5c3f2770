using ClusterSync.Adaptive.Controller;
using ClusterSync.Telemetry;
using Xunit.Abstractions;

namespace ClusterSync.Training.Tests.Training;

/// <summary>
/// Issue 12 item 4, the data scientist's path in one process: a node fed day 1 of a site's trace (the controller replay
/// with the node's own <see cref="TelemetryRecorder"/> attached, as <c>simulate --telemetry</c> does) leaves LiteDB
/// telemetry; <see cref="TelemetryReader.ExportTrace"/> (<c>telemetry export --format trace</c>) → <see cref="TrainingRun"/>
/// (<c>train</c>) → the new model does better on day 2 than the shipped model.
/// </summary>
public sealed class SiteRetrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cs-site-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Telemetry_Export_Train_SplitInsideOneService_NewModelBeatsShippedOnDay2()
    {
        // The site's long/short split inside one service (tcp/9200: long from client ports below 46000): the node's
        // per-service statistics gather 100 outcomes within minutes, but their evidence (what the service's own rule and
        // the model's own choices would have cost on its ended connections) says the retrained model, which knows the
        // split, is cheaper there — so the model decides the service.
        Directory.CreateDirectory(_dir);
        var day1 = OneService(seed: 1, startUnix: 1_700_006_400);
        var day2 = OneService(seed: 2, startUnix: 1_700_006_400 + 86_400);
        var site = TrainOnDay1(day1);
        Assert.True(LifetimeModel.TryLoad(ShippedModelPath(), out var shipped, out var reason), reason);

        var before = Simulation.Run(day2, shipped, [0.05], TimeSpan.FromHours(1), guard: true, modelOnly: false);
        var after = Simulation.Run(day2, site, [0.05], TimeSpan.FromHours(1), guard: true, modelOnly: false);
        var overruled = Simulation.Run(day2, site, [0.05], TimeSpan.FromHours(1), guard: true, modelOnly: false, options: new AdaptiveOptions { ServiceEvidence = false });
        var b = ShippedReference(before);
        var a = after.Frontier!.AtStaticMessages!;
        var o = overruled.Frontier!.AtStaticMessages;
        double staticExposure = before.Static3s.ExposureSeconds;
        output.WriteLine($"day 2, exposure at static 3 s's messages: shipped {b.ExposureSeconds / staticExposure:P1}, site {a.ExposureSeconds / staticExposure:P1}, "
            + $"site with the service statistics always overruling it {(o is null ? "none at static's messages" : (o.ExposureSeconds / staticExposure).ToString("P1", System.Globalization.CultureInfo.InvariantCulture))}");
        Assert.True(a.Messages <= before.Static3s.Messages, $"{a.Messages} > {before.Static3s.Messages}");
        Assert.True(a.ExposureSeconds < 0.8 * b.ExposureSeconds,
            $"site model {a.ExposureSeconds / staticExposure:P1} of static 3 s's exposure, shipped {b.ExposureSeconds / staticExposure:P1}");
        Assert.True(a.ExposureSeconds < 0.5 * staticExposure, $"site model {a.ExposureSeconds / staticExposure:P1} of static 3 s's exposure");
        // Without the evidence the service's statistics overrule the site's model for all of tcp/9200.
        Assert.True(o is null || o.ExposureSeconds > 1.5 * a.ExposureSeconds, $"overruled {o?.ExposureSeconds / staticExposure:P1}, evidence {a.ExposureSeconds / staticExposure:P1}");
    }

    [Fact]
    public void Telemetry_Export_Train_NewModelBeatsShippedOnDay2()
    {
        // A site where what decides a connection's life is something only this site shows: an internal RPC service on
        // ports 50000-50999 is long-lived on the lower 500 ports, short on the upper 500. Its client ports are lower
        // than its own, so the node's online per-service statistics (protocol × the lower port) see thousands of
        // buckets with a handful of outcomes each and leave the decision to the model; the shipped model has never
        // seen this site.
        Directory.CreateDirectory(_dir);
        var day1 = Site(seed: 1, startUnix: 1_700_006_400);
        var day2 = Site(seed: 2, startUnix: 1_700_006_400 + 86_400);
        Assert.InRange(day1.Count, 5_000, 9_000); // 8 h at 0.25 connections/s: the test stays within seconds of replay
        Assert.True(LifetimeModel.TryLoad(ShippedModelPath(), out var shipped, out var reason), reason);

        // 1. day 1 through the node's controller with the shipped model, its telemetry recorded.
        string db = Path.Combine(_dir, "telemetry.db");
        using (var recorder = new TelemetryRecorder(new TelemetryOptions { Enabled = true, Path = db, QueueCapacity = 1 << 16 }, 1,
                   Simulation.ReplayClasses(serviceClasses: false)))
        {
            Simulation.Record(day1, shipped, 0.05, TimeSpan.FromHours(1), guard: true, serviceClasses: false, recorder);
        }

        // 2. export as a trace: every connection of day 1, with its features and lifetime.
        string exported = Path.Combine(_dir, "capture-trace.csv");
        long rows;
        using (var reader = new TelemetryReader(db))
        using (var w = new StreamWriter(exported))
        {
            rows = reader.ExportTrace(w);
        }

        Assert.Equal(day1.Count, rows);

        // 3. train on the capture alone (time split inside day 1).
        var result = TrainingRun.Run(new TrainingRunOptions
        {
            Name = "site",
            Sources = [new TrainingSource(exported, TraceFormat.Trace)],
            OutputDirectory = _dir,
            Trainer = new TrainerOptions { Trees = 20, Leaves = 8, MinimumExamplesPerLeaf = 20 },
            Plots = false,
            Budgets = [0.05],
        });
        Assert.True(LifetimeModel.TryLoad(result.ModelPath, out var site, out reason), reason);

        // 4. day 2, the controller in the loop, frontier point at static 3 s's messages: the site's model wins.
        var before = Simulation.Run(day2, shipped, [0.05], TimeSpan.FromHours(1), guard: true, modelOnly: false);
        var after = Simulation.Run(day2, site, [0.05], TimeSpan.FromHours(1), guard: true, modelOnly: false);
        var b = ShippedReference(before);
        var a = after.Frontier!.AtStaticMessages!;
        double staticExposure = before.Static3s.ExposureSeconds;
        output.WriteLine($"day 2, exposure at static 3 s's messages: shipped {b.ExposureSeconds / staticExposure:P1} ({b.Messages} messages), "
            + $"site {a.ExposureSeconds / staticExposure:P1} ({a.Messages} messages); static 3 s {before.Static3s.Messages} messages");
        Assert.True(a.Messages <= before.Static3s.Messages, $"{a.Messages} > {before.Static3s.Messages}");
        // The shipped reference b sends static's messages or fewer too, or (never getting there) more: either way the
        // site model sends no more than it, and must expose less than 0.8 × what it exposes.
        Assert.True(a.ExposureSeconds < 0.8 * b.ExposureSeconds,
            $"site model {a.ExposureSeconds / staticExposure:P1} of static 3 s's exposure, shipped {b.ExposureSeconds / staticExposure:P1}");
        Assert.True(a.ExposureSeconds < 0.5 * staticExposure, $"site model {a.ExposureSeconds / staticExposure:P1} of static 3 s's exposure");
    }

    /// <summary>
    /// The shipped model's point the site model must beat on both axes: its least-exposure replay with static 3 s's
    /// messages or fewer; when no budget gets it there, its replay with the fewest messages. The since-start guard
    /// (adaptive.guardSinceStart, on by default) holds a model that is no better than static on a site on static's
    /// point, a hair above static's messages (the shipped model on <see cref="Site"/>'s day 2: 100.8–101.7 % of them at
    /// 99.96–99.98 % of its exposure, budgets 0.075–0.5) — the nearest it gets.
    /// </summary>
    private ReplayResult ShippedReference(SimulationRun run)
    {
        var sweep = run.Frontier!.Sweep;
        var point = run.Frontier.AtStaticMessages ?? sweep.OrderBy(r => r.Messages).ThenBy(r => r.ExposureSeconds).First();
        output.WriteLine($"shipped model's reference point: budget {point.Budget:G4}, {100.0 * point.Messages / run.Static3s.Messages:F2} % of static 3 s's messages, "
            + $"{100.0 * point.ExposureSeconds / run.Static3s.ExposureSeconds:F2} % of its exposure ({(run.Frontier.AtStaticMessages is null ? "no replay at static's messages: the fewest" : "at static's messages")})");
        return point;
    }

    /// <summary>Day 1 through the node's controller with the shipped model and its telemetry recorder, exported, trained on (20 trees).</summary>
    private LifetimeModel TrainOnDay1(List<TraceRecord> day1)
    {
        Assert.True(LifetimeModel.TryLoad(ShippedModelPath(), out var shipped, out var reason), reason);
        string db = Path.Combine(_dir, "telemetry.db");
        using (var recorder = new TelemetryRecorder(new TelemetryOptions { Enabled = true, Path = db, QueueCapacity = 1 << 16 }, 1,
                   Simulation.ReplayClasses(serviceClasses: false)))
        {
            Simulation.Record(day1, shipped, 0.05, TimeSpan.FromHours(1), guard: true, serviceClasses: false, recorder);
        }

        string exported = Path.Combine(_dir, "capture-trace.csv");
        using (var reader = new TelemetryReader(db))
        using (var w = new StreamWriter(exported))
        {
            Assert.Equal(day1.Count, reader.ExportTrace(w));
        }

        var result = TrainingRun.Run(new TrainingRunOptions
        {
            Name = "site",
            Sources = [new TrainingSource(exported, TraceFormat.Trace)],
            OutputDirectory = _dir,
            Trainer = new TrainerOptions { Trees = 20, Leaves = 8, MinimumExamplesPerLeaf = 20 },
            Plots = false,
            Budgets = [0.05],
        });
        Assert.True(LifetimeModel.TryLoad(result.ModelPath, out var site, out reason), reason);
        return site;
    }

    /// <summary>8 h: tcp/9200 (60 %), long-lived (20 s and more) from client ports below 46000, short above; smb and dns short.</summary>
    private static List<TraceRecord> OneService(int seed, double startUnix)
    {
        var rng = new Random(seed);
        var list = new List<TraceRecord>();
        double t = startUnix;
        double end = startUnix + (8 * 3600);
        while ((t += -Math.Log(1 - rng.NextDouble()) / 0.25) < end)
        {
            double u = rng.NextDouble();
            ushort sport = (ushort)rng.Next(32768, 59232);
            (byte proto, string src, string dst, ushort dport, double mean) = u switch
            {
                < 0.6 => ((byte)6, "10.1.0.7", "10.1.0.9", (ushort)9200, sport < 46000 ? 40.0 : 0.3),
                < 0.8 => ((byte)6, "203.0.113.5", "10.1.0.9", (ushort)445, 0.5),
                _ => ((byte)17, "10.1.0.7", "198.51.100.53", (ushort)53, 0.1),
            };
            double life = Math.Round((mean > 1 ? 20 : 0) + (-Math.Log(1 - rng.NextDouble()) * mean), 3);
            list.Add(new TraceRecord(Math.Round(t, 3), life, proto, src, sport, dst, dport, "", 0, 0, 0, 0));
        }

        return list;
    }

    private static List<TraceRecord> Site(int seed, double startUnix)
    {
        var rng = new Random(seed);
        var list = new List<TraceRecord>();
        double t = startUnix;
        double end = startUnix + (8 * 3600);
        while ((t += -Math.Log(1 - rng.NextDouble()) / 0.25) < end)
        {
            double u = rng.NextDouble();
            ushort sport = (ushort)rng.Next(32768, 50000);
            ushort rpc = (ushort)rng.Next(50000, 51000);
            (byte proto, string src, string dst, ushort dport, double mean) = u switch
            {
                < 0.6 => ((byte)6, "10.1.0.7", "10.1.0.9", rpc, rpc < 50500 ? 40.0 : 0.3),
                < 0.8 => ((byte)6, "203.0.113.5", "10.1.0.9", (ushort)445, 0.5),
                _ => ((byte)17, "10.1.0.7", "198.51.100.53", (ushort)53, 0.1),
            };
            // The long-lived RPC connections all outlive 3 s (persistent sessions: 20 s and more), the rest are short.
            double life = Math.Round((mean > 1 ? 20 : 0) + (-Math.Log(1 - rng.NextDouble()) * mean), 3);
            list.Add(new TraceRecord(Math.Round(t, 3), life, proto, src, sport, dst, dport, "", 0, 0, 0, 0));
        }

        return list;
    }

    private static string ShippedModelPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir.FullName, "models", "lifetime.zip");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
