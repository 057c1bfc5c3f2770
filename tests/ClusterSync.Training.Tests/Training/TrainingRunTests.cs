namespace ClusterSync.Training.Tests;

[Collection(TrainedModelCollection.Name)]
public sealed class TrainingRunTests
{
    private readonly TrainedModelFixture _fixture;

    public TrainingRunTests(TrainedModelFixture fixture) => _fixture = fixture;

    [Fact]
    public void Run_SmallGeneratedTrace_ModelBeatsStatic3sOnTheFrontier()
    {
        var reads = _fixture.Result.Reads;
        // On the generated mix even the oracle keeps ~40 % of static 3 s's exposure at equal messages (most
        // connections are short and their exposure is unavoidable), so "beats" means: clearly below static 3 s on
        // both reads of the frontier, between it and the oracle. The ≤ 50 % target is for the real data (README).
        Assert.True(reads.AdaptiveAtStatic3Messages.Messages <= reads.Static3.Messages);
        Assert.True(reads.AdaptiveExposureRatio <= 0.9, $"adaptive exposure at static-3s messages: {reads.AdaptiveExposureRatio:P1} of static-3s");
        Assert.True(reads.AdaptiveAtStatic3Exposure.ExposureSeconds <= reads.Static3.ExposureSeconds);
        Assert.True(reads.AdaptiveMessagesRatio <= 0.95, $"adaptive messages at static-3s exposure: {reads.AdaptiveMessagesRatio:P1} of static-3s");
        // The oracle bounds every policy at equal messages.
        Assert.True(reads.OracleAtStatic3Messages.ExposureSeconds <= reads.AdaptiveAtStatic3Messages.ExposureSeconds);
        Assert.True(_fixture.TrainSeconds < 120, $"training took {_fixture.TrainSeconds:0.0} s");
    }

    [Fact]
    public void Run_SmallGeneratedTrace_WritesModelCardAndPngPlots()
    {
        var r = _fixture.Result;
        Assert.True(File.Exists(r.ModelPath));
        var card = File.ReadAllText(r.CardPath);
        Assert.Contains("## Policy simulation on the test days", card, StringComparison.Ordinal);
        Assert.Contains("| static-3s |", card, StringComparison.Ordinal);
        Assert.Contains("| oracle |", card, StringComparison.Ordinal);
        Assert.Contains("Calibration", card, StringComparison.Ordinal);
        Assert.Equal(2, r.PlotPaths.Count);
        foreach (var p in r.PlotPaths)
        {
            var bytes = File.ReadAllBytes(p);
            Assert.True(bytes.Length > 5_000, $"{p}: {bytes.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
    }

    [Fact]
    public void Run_SplitByTime_TestDaysComeAfterTrainingDays()
    {
        var s = _fixture.Result.Split;
        Assert.True(s.Train.Max(r => r.StartUnixSeconds) < s.Calibration.Min(r => r.StartUnixSeconds));
        Assert.True(s.Calibration.Max(r => r.StartUnixSeconds) < s.Test.Min(r => r.StartUnixSeconds));
    }

    [Fact]
    public void Run_Metrics_CalibrationCloseToObservedOnHeldOutDays()
    {
        var m = _fixture.Result.Metrics;
        long n = m.Calibration.Sum(b => b.Count);
        double weightedGap = m.Calibration.Sum(b => Math.Abs(b.Predicted - b.Observed) * b.Count) / n;
        Assert.True(weightedGap < 0.05, $"mean |predicted - observed| of P(L > 3 s): {weightedGap:0.###}");
        Assert.True(m.RSquaredLogLifetime > 0.3, $"R² {m.RSquaredLogLifetime:0.###}");
    }

    [Fact]
    public void Report_PolicyNames_AsTheCommandLineContract()
    {
        var names = _fixture.Result.TestReport.Policies.Select(p => p.Name).ToList();
        Assert.Equal(["sync-all", "static-3s", "static-30s", "per-class-static", "oracle"], names.Take(5));
        Assert.Contains("adaptive@0.01", names);
        var budget = _fixture.Result.TestReport.Policies.Single(p => p.Name == "adaptive@0.01");
        var all = _fixture.Result.TestReport.Policies.Single(p => p.Name == "sync-all");
        Assert.True(budget.Messages < all.Messages);
        Assert.Equal(0, all.ExposureSeconds);
    }
}
