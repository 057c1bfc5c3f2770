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
