using System.IO.Compression;
using System.Text.Json;
using ClusterSync.Adaptive.Features;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;

namespace ClusterSync.Adaptive.Model;

/// <summary>
/// A loaded lifetime model: an ML.NET tree-ensemble regression of ln(lifetime) over the
/// <see cref="FeatureSchema"/> features, plus a calibration table (<see cref="ModelManifest"/>) that maps its score
/// to P(lifetime &gt; delay) and E[min(lifetime, delay)] on <see cref="DelayGrid"/>. Immutable and thread-safe:
/// swap a whole instance to change models. <see cref="Load"/> validates everything and refuses with a reason.
/// </summary>
public sealed class LifetimeModel
{
    /// <summary>Delays (seconds) at which the calibration is kept and among which <see cref="ChooseDelay"/> picks; the last is never.</summary>
    public static IReadOnlyList<double> DelayGrid { get; } = [0, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, double.PositiveInfinity];

    /// <summary>Index of "never sync" in <see cref="DelayGrid"/>.</summary>
    public static int NeverIndex => DelayGrid.Count - 1;

    private readonly CompiledTrees _trees;
    private readonly double[] _upper;
    private readonly double[] _survival; // bucket * grid
    private readonly double[] _exposure;
    private readonly int _grid;

    private LifetimeModel(string path, ModelManifest manifest, ITransformer transformer, CompiledTrees trees)
    {
        Path = path;
        Manifest = manifest;
        Transformer = transformer;
        _trees = trees;
        _grid = DelayGrid.Count;
        int b = manifest.Buckets.Count;
        _upper = new double[b];
        _survival = new double[b * _grid];
        _exposure = new double[b * _grid];
        for (int i = 0; i < b; i++)
        {
            _upper[i] = manifest.Buckets[i].UpperScore ?? double.PositiveInfinity;
            for (int g = 0; g < _grid; g++)
            {
                _survival[(i * _grid) + g] = manifest.Buckets[i].Survival[g];
                _exposure[(i * _grid) + g] = manifest.Buckets[i].Exposure[g];
            }
        }
    }

    public string Path { get; }

    public ModelManifest Manifest { get; }

    public string Name => Manifest.Name;

    /// <summary>The ML.NET model as loaded (for batch scoring through ML.NET and for checks).</summary>
    public ITransformer Transformer { get; }

    public int BucketCount => _upper.Length;

    /// <summary>Loads and validates a model zip; throws <see cref="ModelLoadException"/> naming the file and the reason.</summary>
    public static LifetimeModel Load(string path)
        => TryLoad(path, out var model, out var reason) ? model : throw new ModelLoadException(reason);

    /// <summary>Loads and validates a model zip; on refusal <paramref name="reason"/> names the file and why.</summary>
    public static bool TryLoad(string path, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out LifetimeModel? model, out string reason)
    {
        model = null;
        reason = "";
        if (!File.Exists(path))
        {
            reason = $"{path}: no such model file";
            return false;
        }

        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            ModelManifest? manifest;
            using (var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read))
            {
                var entry = zip.GetEntry(ModelManifest.EntryName);
                if (entry is null)
                {
                    reason = $"{path}: not a ClusterSync lifetime model: the zip has no {ModelManifest.EntryName}";
                    return false;
                }

                using var s = entry.Open();
                manifest = JsonSerializer.Deserialize(s, ModelManifestJson.Default.ModelManifest);
            }

            string why = "empty manifest";
            if (manifest is null || !Validate(manifest, out why))
            {
                reason = $"{path}: {ModelManifest.EntryName}: {why}";
                return false;
            }

            var ml = new MLContext(seed: 0);
            ITransformer transformer;
            DataViewSchema schema;
            using (var s = new MemoryStream(bytes, writable: false))
            {
                transformer = ml.Model.Load(s, out schema);
            }

            var col = schema.GetColumnOrNull(FeatureSchema.FeaturesColumn);
            if (col is null || col.Value.Type is not VectorDataViewType vt || vt.ItemType != NumberDataViewType.Single || vt.Size != FeatureSchema.Count)
            {
                reason = $"{path}: input schema: expected a column '{FeatureSchema.FeaturesColumn}' of {FeatureSchema.Count} floats, found {(col is null ? "none" : col.Value.Type.ToString())}";
                return false;
            }

            var ensemble = FindEnsemble(transformer);
            if (ensemble is null)
            {
                reason = $"{path}: expected an ML.NET tree-ensemble regression (FastTree or LightGBM), found {transformer.GetType().Name}";
                return false;
            }

            var trees = CompiledTrees.From(ensemble);
            if (trees.MaxFeatureIndex >= FeatureSchema.Count)
            {
                reason = $"{path}: the trees split on feature {trees.MaxFeatureIndex}, the schema has {FeatureSchema.Count}";
                return false;
            }

            var candidate = new LifetimeModel(path, manifest, transformer, trees);
            if (!candidate.SelfCheck(ml, out why))
            {
                reason = $"{path}: {why}";
                return false;
            }

            model = candidate;
            return true;
        }
        catch (Exception ex) when (ex is InvalidDataException or JsonException or IOException or FormatException or InvalidOperationException or NotSupportedException or ArgumentException)
        {
            reason = $"{path}: not a readable model file: {ex.GetType().Name}: {ex.Message}";
            return false;
        }
    }

    private static bool Validate(ModelManifest m, out string why)
    {
        why = "";
        if (m.Format != ModelManifest.CurrentFormat)
        {
            why = $"format: expected '{ModelManifest.CurrentFormat}', found '{m.Format}'";
        }
        else if (m.FeatureVersion != FeatureSchema.Version)
        {
            why = $"featureVersion: the model was trained for feature version {m.FeatureVersion}, this build computes version {FeatureSchema.Version}; retrain it with 'clustersync train'";
        }
        else if (!m.Features.SequenceEqual(FeatureSchema.Names))
        {
            why = $"features: expected [{string.Join(", ", FeatureSchema.Names)}], found [{string.Join(", ", m.Features)}]";
        }
        else if (m.DelayGrid.Count != DelayGrid.Count || m.DelayGrid.Where((d, i) => !(d == DelayGrid[i] || (d < 0 && double.IsInfinity(DelayGrid[i])))).Any())
        {
            why = $"delayGrid: expected [{string.Join(", ", DelayGrid.Select(d => double.IsInfinity(d) ? -1 : d))}] (-1 = never)";
        }
        else if (m.Buckets.Count == 0)
        {
            why = "buckets: expected at least one calibration bucket";
        }
        else
        {
            for (int i = 0; i < m.Buckets.Count; i++)
            {
                var b = m.Buckets[i];
                bool last = i == m.Buckets.Count - 1;
                if (b.Survival.Count != DelayGrid.Count || b.Exposure.Count != DelayGrid.Count)
                {
                    why = $"buckets[{i}]: expected {DelayGrid.Count} survival and exposure values";
                }
                else if (last != b.UpperScore is null || (i > 0 && !last && b.UpperScore <= m.Buckets[i - 1].UpperScore))
                {
                    why = $"buckets[{i}].upperScore: expected ascending scores, null only on the last bucket";
                }
                else if (b.Survival.Any(p => !(p >= 0 && p <= 1)) || b.Exposure.Any(x => !(x >= 0) || double.IsInfinity(x)))
                {
                    why = $"buckets[{i}]: expected probabilities in [0, 1] and finite exposures ≥ 0";
                }

                if (why.Length > 0)
                {
                    break;
                }
            }
        }

        return why.Length == 0;
    }

    private static RegressionTreeEnsemble? FindEnsemble(ITransformer transformer)
    {
        switch (transformer)
        {
            case ISingleFeaturePredictionTransformer<object> p when p.Model is TreeEnsembleModelParametersBasedOnRegressionTree t:
                return t.TrainedTreeEnsemble;
            case IEnumerable<ITransformer> chain:
                return chain.Select(FindEnsemble).LastOrDefault(e => e is not null);
            default:
                return null;
        }
    }

    /// <summary>The compiled trees must agree with ML.NET's own evaluation on a spread of inputs.</summary>
    private bool SelfCheck(MLContext ml, out string why)
    {
        var rows = new List<FeatureRow>();
        var rnd = new Random(7);
        byte[] protocols = [6, 17, 1];
        Span<float> f = stackalloc float[FeatureSchema.Count];
        for (int i = 0; i < 64; i++)
        {
            var c = new ConnectionStart(protocols[i % 3], (ushort)rnd.Next(65536), (ushort)(i % 2 == 0 ? rnd.Next(1024) : rnd.Next(65536)),
                rnd.Next(2) == 0, rnd.Next(2) == 0, 1_600_000_000 + rnd.Next(86_400));
            FeatureExtractor.Write(c, f);
            rows.Add(new FeatureRow { Features = f.ToArray() });
        }

        var scored = Transformer.Transform(ml.Data.LoadFromEnumerable(rows));
        var scores = scored.GetColumn<float>("Score").ToArray();
        for (int i = 0; i < rows.Count; i++)
        {
            float compiled = _trees.Evaluate(rows[i].Features);
            if (Math.Abs(compiled - scores[i]) > 1e-3f * Math.Max(1, Math.Abs(scores[i])))
            {
                why = $"compiled trees disagree with ML.NET ({compiled} vs {scores[i]}) for {FeatureExtractor.Describe(rows[i].Features)}";
                return false;
            }
        }

        why = "";
        return true;
    }

    /// <summary>The compiled ensemble (tests compare its two evaluations).</summary>
    internal CompiledTrees Trees => _trees;

    /// <summary>Predicted ln(lifetime seconds) for a feature vector of <see cref="FeatureSchema.Count"/> floats.</summary>
    public float Score(ReadOnlySpan<float> features) => _trees.Evaluate(features);

    /// <summary>One new connection: features, score, calibration bucket. Allocates nothing.</summary>
    public LifetimeEstimate Predict(in ConnectionStart connection)
    {
        Span<float> f = stackalloc float[FeatureSchema.Count];
        FeatureExtractor.Write(connection, f);
        float score = _trees.Evaluate(f);
        return new LifetimeEstimate(score, BucketOf(score));
    }

    /// <summary>A batch of new connections; <paramref name="estimates"/> must be at least as long.</summary>
    public void PredictBatch(ReadOnlySpan<ConnectionStart> connections, Span<LifetimeEstimate> estimates)
    {
        if (estimates.Length < connections.Length)
        {
            throw new ArgumentException("estimates is shorter than connections", nameof(estimates));
        }

        Span<float> f = stackalloc float[FeatureSchema.Count];
        for (int i = 0; i < connections.Length; i++)
        {
            FeatureExtractor.Write(connections[i], f);
            float score = _trees.Evaluate(f);
            estimates[i] = new LifetimeEstimate(score, BucketOf(score));
        }
    }

    public int BucketOf(float score)
    {
        var upper = _upper;
        int lo = 0, hi = upper.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (score <= upper[mid])
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }

    /// <summary>P(lifetime &gt; <see cref="DelayGrid"/>[delayIndex]) for connections like this one.</summary>
    public double ProbabilityAlive(in LifetimeEstimate estimate, int delayIndex) => _survival[(estimate.Bucket * _grid) + delayIndex];

    /// <summary>E[min(lifetime, <see cref="DelayGrid"/>[delayIndex])]: expected exposure seconds under that delay.</summary>
    public double ExpectedExposure(in LifetimeEstimate estimate, int delayIndex) => _exposure[(estimate.Bucket * _grid) + delayIndex];

    /// <summary>The whole calibrated row for connections like this one: P(lifetime &gt; d) and E[min(lifetime, d)] for every d of <see cref="DelayGrid"/>.</summary>
    public void CopyDistribution(in LifetimeEstimate estimate, Span<double> survival, Span<double> exposure)
    {
        int row = estimate.Bucket * _grid;
        _survival.AsSpan(row, _grid).CopyTo(survival);
        _exposure.AsSpan(row, _grid).CopyTo(exposure);
    }

    /// <summary>
    /// The delay (index into <see cref="DelayGrid"/>) that minimizes <c>price · P(sync) + E[exposure]</c>:
    /// <paramref name="pricePerSync"/> is the exposure seconds one synced connection is worth (its messages priced
    /// in seconds). Large prices hold connections back; small prices sync them early.
    /// </summary>
    public int ChooseDelay(in LifetimeEstimate estimate, double pricePerSync)
    {
        int row = estimate.Bucket * _grid;
        int best = 0;
        double bestCost = double.PositiveInfinity;
        for (int g = 0; g < _grid; g++)
        {
            double cost = (pricePerSync * _survival[row + g]) + _exposure[row + g];
            if (cost < bestCost)
            {
                bestCost = cost;
                best = g;
            }
        }

        return best;
    }
}

/// <summary>The row type of ML.NET data views over features (training, batch scoring, checks).</summary>
public sealed class FeatureRow
{
    [VectorType(FeatureSchema.Count)]
    [ColumnName(FeatureSchema.FeaturesColumn)]
    public float[] Features { get; set; } = new float[FeatureSchema.Count];

    [ColumnName(FeatureSchema.LabelColumn)]
    public float Label { get; set; }
}
