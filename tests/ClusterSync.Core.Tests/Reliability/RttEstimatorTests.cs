using ClusterSync.Reliability;

namespace ClusterSync.Core.Tests.Reliability;

public sealed class RttEstimatorTests
{
    [Fact]
    public void NoSample_RetryIsZero_TheCallersFloorApplies()
    {
        var rtt = new RttEstimator();

        Assert.Equal(0, rtt.RetryMs);
        Assert.Equal(0, rtt.Samples);
    }

    [Fact]
    public void FirstSample_SetsSmoothedAndHalfAsVariation()
    {
        var rtt = new RttEstimator();

        rtt.Add(200);

        Assert.Equal(200, rtt.SmoothedMs);
        Assert.Equal(100, rtt.VariationMs);
        Assert.Equal(600, rtt.RetryMs);
        Assert.Equal(1, rtt.Samples);
    }

    [Fact]
    public void LaterSamples_FollowRfc6298Weights()
    {
        var rtt = new RttEstimator();
        rtt.Add(200);

        rtt.Add(120);

        Assert.Equal(0.75 * 100 + 0.25 * 80, rtt.VariationMs, 9); // 95: against the old SRTT
        Assert.Equal(0.875 * 200 + 0.125 * 120, rtt.SmoothedMs, 9); // 190
        Assert.Equal(190 + 4 * 95, rtt.RetryMs, 9);
    }

    [Fact]
    public void SteadyRoundTrip_RetryConvergesToIt()
    {
        var rtt = new RttEstimator();
        for (int i = 0; i < 200; i++)
        {
            rtt.Add(i % 2 == 0 ? 190 : 210);
        }

        Assert.InRange(rtt.SmoothedMs, 195, 205);
        Assert.InRange(rtt.RetryMs, 230, 260); // SRTT + 4 × ~10
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(RttEstimator.MaxRetryMs + 1)]
    public void OutOfRangeSample_Ignored(double sample)
    {
        var rtt = new RttEstimator();
        rtt.Add(50);

        rtt.Add(sample);

        Assert.Equal(50, rtt.SmoothedMs);
        Assert.Equal(1, rtt.Samples);
    }

    [Fact]
    public void Retry_CappedAtMax()
    {
        var rtt = new RttEstimator();

        rtt.Add(RttEstimator.MaxRetryMs);

        Assert.Equal(RttEstimator.MaxRetryMs, rtt.RetryMs);
        Assert.Equal(RttEstimator.MaxRetryMs, rtt.SmoothedMs);
    }

    [Fact]
    public void ZeroSample_Taken()
    {
        var rtt = new RttEstimator();

        rtt.Add(0);

        Assert.Equal(1, rtt.Samples);
        Assert.Equal(0, rtt.RetryMs);
    }
}
