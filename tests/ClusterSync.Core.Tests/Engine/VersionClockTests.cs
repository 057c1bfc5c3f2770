namespace ClusterSync.Core.Tests.Engine;

public class VersionClockTests
{
    [Fact]
    public void Next_SameMillisecond_StrictlyIncreasing()
    {
        var clock = new VersionClock();

        ulong a = clock.Next(1000);
        ulong b = clock.Next(1000);

        Assert.Equal(1000UL << 20, a);
        Assert.Equal(a + 1, b);
    }

    [Fact]
    public void Next_ClockGoesBackwards_NeverDecreases()
    {
        var clock = new VersionClock();
        ulong a = clock.Next(5000);

        ulong b = clock.Next(4000);

        Assert.True(b > a);
    }

    [Fact]
    public void Next_AfterObservingNewerVersion_IsNewerStill()
    {
        var clock = new VersionClock();
        clock.Next(1000);
        ulong observed = 9000UL << 20;

        clock.Observe(observed);
        clock.Observe(5); // older: ignored

        Assert.Equal(observed + 1, clock.Next(2000));
    }

    [Fact]
    public void Next_NegativeTime_TreatedAsZero()
    {
        var clock = new VersionClock();

        Assert.Equal(1UL, clock.Next(-5));
    }
}
