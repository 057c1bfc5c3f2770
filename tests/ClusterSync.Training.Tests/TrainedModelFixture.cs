namespace ClusterSync.Tests;

/// <summary>
/// One real training run on a small generated trace (3 days at 0.4 connections/s, ~100k connections), shared by the
/// tests of a class: trained once, in a few seconds.
/// </summary>
public sealed class TrainedModelFixture : IDisposable
{
    public TrainedModelFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "cs-train-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        TracePath = Path.Combine(Directory, "trace.csv");
        TraceCsv.Write(TracePath, TraceGenerator.Generate(new TraceGeneratorOptions { Seed = 42, SpanSeconds = 3 * 86_400, ConnectionsPerSecond = 0.4, BurstsPerHour = 2 }));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Result = TrainingRun.Run(new TrainingRunOptions
        {
            Name = "test-model",
            Sources = [new TrainingSource(TracePath, TraceFormat.Trace)],
            OutputDirectory = Directory,
            Trainer = new TrainerOptions { Trees = 40, Leaves = 16 },
        });
        TrainSeconds = sw.Elapsed.TotalSeconds;
    }

    public string Directory { get; }

    public string TracePath { get; }

    internal TrainingRunResult Result { get; }

    public double TrainSeconds { get; }

    /// <summary>A copy of the trained model whose manifest <paramref name="change"/> rewrote, named <paramref name="fileName"/> (else a fresh name).</summary>
    internal string CopyWithManifest(Func<ModelManifest, ModelManifest> change, string? fileName = null)
    {
        string path = Path.Combine(Directory, fileName ?? Guid.NewGuid().ToString("N") + ".zip");
        File.Copy(Result.ModelPath, path, overwrite: true);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Update);
        var entry = zip.GetEntry(ModelManifest.EntryName)!;
        ModelManifest m;
        using (var s = entry.Open())
        {
            m = JsonSerializer.Deserialize(s, ModelManifestJson.Default.ModelManifest)!;
        }

        entry.Delete();
        using var w = zip.CreateEntry(ModelManifest.EntryName).Open();
        JsonSerializer.Serialize(w, change(m), ModelManifestJson.Default.ModelManifest);
        return path;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The test classes that share one <see cref="TrainedModelFixture"/> (trained once per test run).</summary>
[CollectionDefinition(Name)]
public sealed class TrainedModelCollection : ICollectionFixture<TrainedModelFixture>
{
    public const string Name = "trained model";
}
