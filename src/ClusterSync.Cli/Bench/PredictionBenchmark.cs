using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Adaptive.Model;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench prediction</c>: adaptive mode's cost per new connection — the node's
/// <see cref="AdaptiveController.Decide"/>: key → features → tree walk → calibration bucket → delay, the baseline
/// guard's lookup and the exposure ledger's bookkeeping — over generated connections, after a warm-up. Reports wall time and the thread's
/// CPU time per connection (CPU time stays meaningful on a loaded machine; BenchmarkDotNet's
/// <c>PredictionBenchmarks</c> measures the same path in isolation).
/// </summary>
internal static class PredictionBenchmark
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model zip.", DefaultValueFactory = _ => Path.Combine("models", "lifetime.zip") };
        var count = new Option<int>("--connections") { Description = "Predictions to time.", DefaultValueFactory = _ => 2_000_000 };
        return BenchCommand.Create("prediction", "Cost of one adaptive decision (features + model + delay) per new connection.", [model, count], (parse, bench) =>
        {
            int n = parse.GetValue(count);
            if (n is < 1000 or > 100_000_000)
            {
                return bench.Refuse("--connections: expected 1000-100000000");
            }

            if (!LifetimeModel.TryLoad(parse.GetValue(model)!, out var m, out var reason))
            {
                return bench.Refuse($"--model: {reason}");
            }

            var r = Run(m, n);
            if (bench.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["model"] = m.Path, ["connections"] = n, ["wall_ns_per_connection"] = Math.Round(r.WallNs, 1),
                    ["cpu_ns_per_connection"] = Math.Round(r.CpuNs, 1), ["allocated_bytes"] = r.Allocated,
                }));
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{m.Path}: {n:N0} decisions, {r.WallNs:0.0} ns wall, {r.CpuNs:0.0} ns CPU per new connection, {r.Allocated} bytes allocated"));
            }

            return CommandLine.Success;
        });
    }

    public static (double WallNs, double CpuNs, long Allocated) Run(LifetimeModel model, int n)
    {
        var trace = TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 11, SpanSeconds = 3600, ConnectionsPerSecond = 2 });
        var keys = trace.Take(4096).Select(t => ConnectionKey.IPv4((uint)t.GetHashCode(), 0x0A00_0001, t.SourcePort, t.DestinationPort, t.Protocol)).ToArray();
        var entries = trace.Take(4096).Select(t => new ConnectionEntry { CreatedMs = (long)(t.StartUnixSeconds * 1000) }).ToArray();
        // One class the model decides for every connection (no never-skip or never-sync shortcut): each decision walks the trees.
        var catalog = new ServiceClassCatalog(new PolicyOptions
        {
            DefaultClass = "default",
            Classes = [new ServiceClassOptions { Name = "default", Policy = "delayed", DelaySeconds = 3 }],
            Rules = [],
        });
        var classes = keys.Select(k => catalog.Classify(k)).ToArray();
        var policies = classes.Select(c => catalog.PolicyOf(c)).ToArray();
        using var controller = new AdaptiveController(new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMinutes(10) }, catalog.Classes,
            new LifetimeModelPredictor(model));
        int sink = 0;
        for (int i = 0; i < 500_000; i++)
        {
            sink += Decide(controller, keys, entries, classes, policies, i);
        }

        int tid = ThreadCpu.CurrentThreadId();
        long alloc = GC.GetAllocatedBytesForCurrentThread();
        var cpu0 = ThreadCpu.CpuTime(tid);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            sink += Decide(controller, keys, entries, classes, policies, i);
        }

        sw.Stop();
        var cpu = ThreadCpu.CpuTime(tid) - cpu0;
        alloc = GC.GetAllocatedBytesForCurrentThread() - alloc;
        GC.KeepAlive(sink);
        return (sw.Elapsed.TotalNanoseconds / n, cpu.TotalNanoseconds / n, alloc);
    }

    private static int Decide(AdaptiveController controller, ConnectionKey[] keys, ConnectionEntry[] entries, byte[] classes, SyncPolicy[] policies, int i)
    {
        int j = i & 4095;
        return controller.Decide(keys[j], entries[j], classes[j], policies[j]).DelayMs;
    }
}
