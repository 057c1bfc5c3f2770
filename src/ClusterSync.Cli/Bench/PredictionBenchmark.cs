using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>clustersync bench prediction</c>: adaptive mode's cost per new connection — key → features → tree walk →
/// calibration bucket → delay — over generated connections, after a warm-up. Reports wall time and the thread's
/// CPU time per connection (CPU time stays meaningful on a loaded machine; BenchmarkDotNet's
/// <c>PredictionBenchmarks</c> measures the same path in isolation).
/// </summary>
internal static class PredictionBenchmark
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model zip.", DefaultValueFactory = _ => Path.Combine("models", "lifetime.zip") };
        var count = new Option<int>("--connections") { Description = "Predictions to time.", DefaultValueFactory = _ => 2_000_000 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("prediction", "Cost of one adaptive decision (features + model + delay) per new connection.") { model, count, json };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(count);
            if (n is < 1000 or > 100_000_000)
            {
                Console.Error.WriteLine("clustersync: bench prediction: --connections: expected 1000-100000000");
                return CommandLine.BadInput;
            }

            if (!LifetimeModel.TryLoad(parse.GetValue(model)!, out var m, out var reason))
            {
                Console.Error.WriteLine($"clustersync: --model: {reason}");
                return CommandLine.BadInput;
            }

            var r = Run(m, n);
            if (parse.GetValue(json))
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
        return command;
    }

    public static (double WallNs, double CpuNs, long Allocated) Run(LifetimeModel model, int n)
    {
        var trace = TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 11, SpanSeconds = 3600, ConnectionsPerSecond = 2 });
        var keys = trace.Take(4096).Select(t => ConnectionKey.IPv4((uint)t.GetHashCode(), 0x0A00_0001, t.SourcePort, t.DestinationPort, t.Protocol)).ToArray();
        var starts = trace.Take(4096).Select(t => t.StartUnixSeconds).ToArray();
        int sink = 0;
        for (int i = 0; i < 500_000; i++)
        {
            sink += Decide(model, keys, starts, i);
        }

        int tid = ThreadCpu.CurrentThreadId();
        long alloc = GC.GetAllocatedBytesForCurrentThread();
        var cpu0 = ThreadCpu.CpuTime(tid);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            sink += Decide(model, keys, starts, i);
        }

        sw.Stop();
        var cpu = ThreadCpu.CpuTime(tid) - cpu0;
        alloc = GC.GetAllocatedBytesForCurrentThread() - alloc;
        GC.KeepAlive(sink);
        return (sw.Elapsed.TotalNanoseconds / n, cpu.TotalNanoseconds / n, alloc);
    }

    private static int Decide(LifetimeModel model, ConnectionKey[] keys, double[] starts, int i)
    {
        int j = i & 4095;
        var est = model.Predict(FeatureExtractor.FromKey(keys[j], starts[j]));
        return model.ChooseDelay(est, 2.0);
    }
}
