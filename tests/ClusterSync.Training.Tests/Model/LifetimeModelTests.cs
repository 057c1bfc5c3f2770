using Microsoft.ML;
using Microsoft.ML.Data;

namespace ClusterSync.Adaptive.Tests.Model;

[Collection(TrainedModelCollection.Name)]
public sealed class LifetimeModelTests
{
    private readonly TrainedModelFixture _fixture;

    public LifetimeModelTests(TrainedModelFixture fixture) => _fixture = fixture;

    [Fact]
    public void Load_WrongFeatureVersion_RefusedWithReason()
    {
        var path = _fixture.CopyWithManifest(m => m with { FeatureVersion = FeatureSchema.Version + 1 });
        Assert.False(LifetimeModel.TryLoad(path, out var model, out var reason));
        Assert.Null(model);
        Assert.Contains(path, reason, StringComparison.Ordinal);
        Assert.Contains("feature version " + (FeatureSchema.Version + 1), reason, StringComparison.Ordinal);
        var ex = Assert.Throws<ModelLoadException>(() => LifetimeModel.Load(path));
        Assert.Contains("featureVersion", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ShippedModel_ValidForThisBuild()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        string shipped = Path.Combine(dir.FullName, "models", "lifetime.zip");
        // A feature change must come with a retrained shipped model (models/train-shipped.sh).
        Assert.True(LifetimeModel.TryLoad(shipped, out var model, out var reason), reason);
        Assert.Equal(FeatureSchema.Version, model.Manifest.FeatureVersion);
        Assert.True(model.BucketCount > 10);
    }

    [Fact]
    public void Load_OtherFeatureNames_Refused()
    {
        var path = _fixture.CopyWithManifest(m => m with { Features = [.. m.Features.Reverse()] });
        Assert.False(LifetimeModel.TryLoad(path, out _, out var reason));
        Assert.Contains("features: expected", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NotAModel_RefusedWithReason()
    {
        string junk = Path.Combine(_fixture.Directory, "junk.zip");
        File.WriteAllText(junk, "not a zip");
        Assert.False(LifetimeModel.TryLoad(junk, out _, out var reason));
        Assert.Contains("junk.zip", reason, StringComparison.Ordinal);

        string missing = Path.Combine(_fixture.Directory, "missing.zip");
        Assert.False(LifetimeModel.TryLoad(missing, out _, out reason));
        Assert.Contains("no such model file", reason, StringComparison.Ordinal);

        // An ML.NET zip without our manifest.
        string bare = Path.Combine(_fixture.Directory, "bare.zip");
        File.Copy(_fixture.Result.ModelPath, bare);
        using (var zip = ZipFile.Open(bare, ZipArchiveMode.Update))
        {
            zip.GetEntry(ModelManifest.EntryName)!.Delete();
        }

        Assert.False(LifetimeModel.TryLoad(bare, out _, out reason));
        Assert.Contains(ModelManifest.EntryName, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Predict_CompiledTrees_AgreeWithMlNetTransform()
    {
        var model = LifetimeModel.Load(_fixture.Result.ModelPath);
        var ml = new MLContext(0);
        var records = _fixture.Result.Split.Test.Take(2000).ToList();
        var rows = records.Select(r =>
        {
            var row = new FeatureRow();
            FeatureExtractor.Write(FeatureExtractor.FromTrace(r), row.Features);
            return row;
        }).ToList();
        var scores = model.Transformer.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float>("Score").ToArray();
        var starts = records.Select(r => FeatureExtractor.FromTrace(r)).ToArray();
        var batch = new LifetimeEstimate[starts.Length];
        model.PredictBatch(starts, batch);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(scores[i], model.Predict(starts[i]).Score, 3);
            Assert.Equal(scores[i], batch[i].Score, 3);
        }
    }

    [Fact]
    public void Evaluate_BitTables_SameScoreAsTheWalk_OnEveryThresholdEdgeNaNAndInfinity()
    {
        foreach (var path in new[] { _fixture.Result.ModelPath, ShippedModelPath() })
        {
            var trees = LifetimeModel.Load(path).Trees;
            Assert.True(trees.UsesBitTables, path);
            // Per feature: every threshold, the floats just below and above it, and the edge values.
            var probes = Enumerable.Range(0, FeatureSchema.Count).Select(f => trees.ThresholdsOf(f)
                .SelectMany(t => new[] { t, MathF.BitDecrement(t), MathF.BitIncrement(t) })
                .Concat([float.NaN, float.NegativeInfinity, float.PositiveInfinity, 0f, -1f, 65535f]).ToArray()).ToArray();
            var rng = new Random(7);
            var features = new float[FeatureSchema.Count];
            int checkedVectors = 0;
            for (int i = 0; i < 20_000; i++)
            {
                for (int f = 0; f < features.Length; f++)
                {
                    features[f] = rng.Next(4) == 0 ? (float)(rng.NextDouble() * 70_000) - 1000 : probes[f][rng.Next(probes[f].Length)];
                }

                float walk = trees.Walk(features);
                float bits = trees.Evaluate(features);
                Assert.True(BitConverter.SingleToInt32Bits(walk) == BitConverter.SingleToInt32Bits(bits),
                    $"{path}: {bits} from the bit tables, {walk} from the walk, for {FeatureExtractor.Describe(features)}");
                checkedVectors++;
            }

            Assert.Equal(20_000, checkedVectors);
        }
    }

    private static string ShippedModelPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir!.FullName, "models", "lifetime.zip");
    }

    [Fact]
    public void ChooseDelay_PriceExtremes_SyncAllOrNever()
    {
        var model = LifetimeModel.Load(_fixture.Result.ModelPath);
        var est = model.Predict(FeatureExtractor.FromTrace(_fixture.Result.Split.Test[0]));
        Assert.Equal(0, model.ChooseDelay(est, 0));
        Assert.Equal(LifetimeModel.NeverIndex, model.ChooseDelay(est, 1e12));
        for (int g = 1; g < LifetimeModel.DelayGrid.Count; g++)
        {
            Assert.True(model.ProbabilityAlive(est, g) <= model.ProbabilityAlive(est, g - 1));
            Assert.True(model.ExpectedExposure(est, g) >= model.ExpectedExposure(est, g - 1) - 1e-9);
        }
    }
}
