using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Training;
using ClusterSync.Workload.Trace;
using Microsoft.ML;

namespace ClusterSync.Benchmarks;

/// <summary>
/// Adaptive mode's cost per new connection (issue: ≤ 2 µs): features from the key, the tree walk, the calibration
/// bucket and the delay choice. Uses the shipped models/lifetime.zip when present, else trains a small model from a
/// generated trace first. ML.NET's PredictionEngine is measured alongside for reference.
/// </summary>
[MemoryDiagnoser]
public class PredictionBenchmarks
{
    private const int Batch = 256;
    private LifetimeModel _model = null!;
    private ConnectionKey[] _keys = null!;
    private ConnectionStart[] _starts = null!;
    private LifetimeEstimate[] _estimates = null!;
    private PredictionEngine<FeatureRow, ScoreRow> _engine = null!;
    private FeatureRow _row = null!;
    private int _i;

    [GlobalSetup]
    public void Setup()
    {
        string shipped = Path.GetFullPath(Path.Combine(ProjectPaths.Directory(), "..", "..", "models", "lifetime.zip"));
        if (File.Exists(shipped))
        {
            _model = LifetimeModel.Load(shipped);
        }
        else
        {
            string dir = Path.Combine(Path.GetTempPath(), "cs-bench-model");
            Directory.CreateDirectory(dir);
            string trace = Path.Combine(dir, "trace.csv");
            TraceCsv.Write(trace, TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 3, SpanSeconds = 3 * 86_400, ConnectionsPerSecond = 0.3 }));
            var r = TrainingRun.Run(new TrainingRunOptions { Name = "bench", Sources = [new TrainingSource(trace, TraceFormat.Trace)], OutputDirectory = dir, Plots = false });
            _model = LifetimeModel.Load(r.ModelPath);
        }

        var trace2 = TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 9, SpanSeconds = 3600, ConnectionsPerSecond = 2 });
        _keys = trace2.Take(Batch).Select(t => ConnectionKey.IPv4((uint)t.GetHashCode(), 0x0A00_0001, t.SourcePort, t.DestinationPort, t.Protocol)).ToArray();
        _starts = trace2.Take(Batch).Select(t => FeatureExtractor.FromTrace(t)).ToArray();
        _estimates = new LifetimeEstimate[Batch];
        _engine = new MLContext(0).Model.CreatePredictionEngine<FeatureRow, ScoreRow>(_model.Transformer);
        _row = new FeatureRow();
        FeatureExtractor.Write(_starts[0], _row.Features);
        for (int i = 0; i < 1000; i++)
        {
            _engine.Predict(_row);
        }
    }

    [Benchmark(Baseline = true, Description = "features from a key")]
    public float Features()
    {
        Span<float> f = stackalloc float[FeatureSchema.Count];
        FeatureExtractor.Write(FeatureExtractor.FromKey(_keys[_i++ & (Batch - 1)], 1_767_600_000), f);
        return f[0];
    }

    [Benchmark(Description = "key -> features -> trees -> delay (one connection)")]
    public int PredictAndDecide()
    {
        var est = _model.Predict(FeatureExtractor.FromKey(_keys[_i++ & (Batch - 1)], 1_767_600_000));
        return _model.ChooseDelay(est, 2.0);
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "PredictBatch (per connection)")]
    public float PredictBatch()
    {
        _model.PredictBatch(_starts, _estimates);
        return _estimates[^1].Score;
    }

    [Benchmark(Description = "ML.NET PredictionEngine (reference)")]
    public float MlNetEngine() => _engine.Predict(_row).Score;

    public sealed class ScoreRow
    {
        public float Score { get; set; }
    }
}
