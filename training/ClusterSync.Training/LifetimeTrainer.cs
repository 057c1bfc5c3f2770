using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Workload.Trace;
using Microsoft.ML;
using Microsoft.ML.Trainers.FastTree;

namespace ClusterSync.Training;

/// <summary>Hyper-parameters of the lifetime model.</summary>
public sealed record TrainerOptions
{
    public int Trees { get; init; } = 100;
    public int Leaves { get; init; } = 32;
    public int MinimumExamplesPerLeaf { get; init; } = 50;
    public double LearningRate { get; init; } = 0.15;

    /// <summary>Training rows beyond this are thinned evenly over time (keeps training fast).</summary>
    public int MaxTrainingRows { get; init; } = 400_000;

    /// <summary>Calibration buckets (fewer when the calibration data is small: at least 100 connections per bucket).</summary>
    public int Buckets { get; init; } = 64;

    public int Seed { get; init; } = 1;
}

/// <summary>
/// Trains the lifetime model: an ML.NET FastTree regression of ln(lifetime) on the shared features
/// (<see cref="FeatureExtractor"/>), then a calibration table from held-out (later) data: the score range is cut
/// into quantile buckets and each bucket keeps its observed survival and mean exposure at every delay of
/// <see cref="LifetimeModel.DelayGrid"/>. Writes one zip: ML.NET's model plus <see cref="ModelManifest"/>.
/// </summary>
internal static class LifetimeTrainer
{
    public const float MinLifetimeSeconds = 0.001f;

    public static float Label(double lifetimeSeconds) => MathF.Log(MathF.Max(MinLifetimeSeconds, (float)lifetimeSeconds));

    public static List<FeatureRow> Rows(IReadOnlyList<TraceRecord> records, int max)
    {
        int step = Math.Max(1, (int)Math.Ceiling(records.Count / (double)Math.Max(1, max)));
        var rows = new List<FeatureRow>((records.Count / step) + 1);
        for (int i = 0; i < records.Count; i += step)
        {
            var r = records[i];
            var row = new FeatureRow { Label = Label(r.DurationSeconds) };
            FeatureExtractor.Write(FeatureExtractor.FromTrace(r), row.Features);
            rows.Add(row);
        }

        return rows;
    }

    /// <summary>Trains the trees; returns the ML.NET transformer and the schema it was trained on.</summary>
    public static (ITransformer Model, DataViewSchema Schema) TrainTrees(MLContext ml, IReadOnlyList<TraceRecord> train, TrainerOptions options)
    {
        var rows = Rows(train, options.MaxTrainingRows);
        if (rows.Count < 20)
        {
            throw ConfigurationErrors.At("training data", $"expected at least 20 connections in the training days, found {rows.Count}");
        }

        var data = ml.Data.LoadFromEnumerable(rows);
        var trainer = ml.Regression.Trainers.FastTree(new FastTreeRegressionTrainer.Options
        {
            LabelColumnName = FeatureSchema.LabelColumn,
            FeatureColumnName = FeatureSchema.FeaturesColumn,
            NumberOfTrees = options.Trees,
            NumberOfLeaves = options.Leaves,
            MinimumExampleCountPerLeaf = Math.Min(options.MinimumExamplesPerLeaf, Math.Max(1, rows.Count / 20)),
            LearningRate = options.LearningRate,
            NumberOfThreads = 1,
        });
        var model = trainer.Fit(data);
        return (model, data.Schema);
    }

    /// <summary>The calibration table: score quantile buckets with observed survival and exposure on the grid.</summary>
    public static List<LifetimeBucket> Calibrate(Func<ReadOnlySpan<float>, float> score, IReadOnlyList<TraceRecord> calibration, int buckets)
    {
        if (calibration.Count == 0)
        {
            throw ConfigurationErrors.At("calibration data", "expected connections in the calibration days, found none");
        }

        var scored = new (float Score, double Lifetime)[calibration.Count];
        Span<float> f = stackalloc float[FeatureSchema.Count];
        for (int i = 0; i < calibration.Count; i++)
        {
            FeatureExtractor.Write(FeatureExtractor.FromTrace(calibration[i]), f);
            scored[i] = (score(f), calibration[i].DurationSeconds);
        }

        Array.Sort(scored, static (a, b) => a.Score.CompareTo(b.Score));
        int n = Math.Clamp(Math.Min(buckets, scored.Length / 100), 1, 1000);
        // Cut points at score quantiles; equal scores stay in one bucket (trees give few distinct scores).
        var cuts = new List<float>();
        for (int k = 1; k < n; k++)
        {
            float c = scored[(int)((long)k * scored.Length / n)].Score;
            if (cuts.Count == 0 || c > cuts[^1])
            {
                cuts.Add(c);
            }
        }

        var grid = LifetimeModel.DelayGrid;
        var result = new List<LifetimeBucket>();
        int start = 0;
        for (int b = 0; b <= cuts.Count; b++)
        {
            int end = start;
            while (end < scored.Length && (b == cuts.Count || scored[end].Score < cuts[b]))
            {
                end++;
            }

            // Score < cut goes below; the bucket's upper bound is the largest score it holds (inclusive).
            var span = scored.AsSpan(start, end - start);
            var survival = new double[grid.Count];
            var exposure = new double[grid.Count];
            foreach (var (_, l) in span)
            {
                for (int g = 0; g < grid.Count; g++)
                {
                    if (l > grid[g])
                    {
                        survival[g]++;
                    }

                    exposure[g] += Math.Min(l, grid[g]);
                }
            }

            int count = Math.Max(1, span.Length);
            result.Add(new LifetimeBucket
            {
                UpperScore = b == cuts.Count ? null : Math.BitDecrement((double)cuts[b]),
                Count = span.Length,
                Survival = survival.Select(s => s / count).ToArray(),
                Exposure = exposure.Select(x => x / count).ToArray(),
            });
            start = end;
        }

        // An empty bucket (possible only at the edges) borrows its neighbour's statistics.
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i].Count == 0)
            {
                var donor = result.Skip(i + 1).FirstOrDefault(x => x.Count > 0) ?? result.Take(i).Last(x => x.Count > 0);
                result[i] = result[i] with { Survival = donor.Survival, Exposure = donor.Exposure };
            }
        }

        return result;
    }

    /// <summary>Writes ML.NET's model zip with <see cref="ModelManifest.EntryName"/> added.</summary>
    public static void Write(string path, MLContext ml, ITransformer model, DataViewSchema schema, ModelManifest manifest)
    {
        var ms = new MemoryStream();
        ml.Model.Save(model, schema, ms);
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = zip.CreateEntry(ModelManifest.EntryName, CompressionLevel.Optimal);
            using var s = entry.Open();
            JsonSerializer.Serialize(s, manifest, ModelManifestJson.Default.ModelManifest);
        }

        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        // Write then rename, so a node watching the file never sees half a model.
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, ms.ToArray());
        File.Move(tmp, path, overwrite: true);
    }

    public static ModelManifest Manifest(string name, IReadOnlyList<LifetimeBucket> buckets, TrainerOptions options, string trainingData, int featureVersion = FeatureSchema.Version)
        => new()
        {
            Format = ModelManifest.CurrentFormat,
            FeatureVersion = featureVersion,
            Features = [.. FeatureSchema.Names],
            DelayGrid = LifetimeModel.DelayGrid.Select(d => double.IsInfinity(d) ? -1 : d).ToArray(),
            Buckets = buckets,
            Name = name,
            Trainer = string.Create(CultureInfo.InvariantCulture,
                $"ML.NET FastTree regression of ln(lifetime): {options.Trees} trees, {options.Leaves} leaves, min {options.MinimumExamplesPerLeaf} per leaf, learning rate {options.LearningRate}"),
            TrainedAtUtc = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            TrainingData = trainingData,
        };
}
