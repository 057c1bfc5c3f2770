namespace ClusterSync.Training.Tests;

public sealed class TimeSplitTests
{
    private static TraceRecord At(double t) => new(t, 1, 6, "10.0.0.1", 40000, "10.0.0.2", 443, "web", 1, 1, 1, 1);

    [Fact]
    public void ByDays_FiveDays_LatestDaysTestTheDayBeforeCalibrates()
    {
        const double day0 = 1_767_571_200;
        var records = Enumerable.Range(0, 5 * 24).Select(h => At(day0 + (h * 3600.0))).ToList();
        var s = TimeSplit.ByDays(records, testDays: 2, calibrationDays: 1);
        Assert.Equal(48, s.Test.Count);
        Assert.Equal(24, s.Calibration.Count);
        Assert.Equal(48, s.Train.Count);
        Assert.True(s.Test.Min(r => r.StartUnixSeconds) >= day0 + (3 * 86_400));
        Assert.Contains("test 2 [2026-01-08, 2026-01-09]", s.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void ByDays_TwoDays_FallsBackToTimeFractionsInOrder()
    {
        const double day0 = 1_767_571_200;
        var records = Enumerable.Range(0, 100).Select(i => At(day0 + (i * 1728.0))).ToList();
        var s = TimeSplit.ByDays(records, testDays: 4, calibrationDays: 1);
        Assert.True(s.Train.Count > 50 && s.Calibration.Count > 10 && s.Test.Count > 10);
        Assert.True(s.Train.Max(r => r.StartUnixSeconds) < s.Calibration.Min(r => r.StartUnixSeconds));
        Assert.True(s.Calibration.Max(r => r.StartUnixSeconds) < s.Test.Min(r => r.StartUnixSeconds));
    }

    [Fact]
    public void ByDays_NoData_ConfigurationError()
        => Assert.Throws<ConfigurationException>(() => TimeSplit.ByDays([], 1, 1));
}
