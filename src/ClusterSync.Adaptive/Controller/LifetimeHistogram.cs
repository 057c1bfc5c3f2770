namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// Online lifetime distribution of one service class: 64 log-spaced bins from 10 ms to about 11 days (×1.38 per bin),
/// counts that fade by <see cref="Decay"/> so the quantiles follow a shifting workload. Not thread-safe: the
/// feedback loop owns it.
/// </summary>
internal sealed class LifetimeHistogram
{
    public const int Bins = 64;
    private const double MinSeconds = 0.01;
    private static readonly double LogRatio = Math.Log(1e8) / Bins;
    private readonly double[] _counts = new double[Bins];

    /// <summary>Effective number of observations (faded).</summary>
    public double Count { get; private set; }

    /// <summary>Observations ever added.</summary>
    public long Total { get; private set; }

    public void Add(double seconds)
    {
        _counts[BinOf(seconds)]++;
        Count++;
        Total++;
    }

    /// <summary>Multiplies every count by <paramref name="factor"/> (0-1): older outcomes weigh less.</summary>
    public void Decay(double factor)
    {
        for (int i = 0; i < Bins; i++)
        {
            _counts[i] *= factor;
        }

        Count *= factor;
    }

    /// <summary>The share of observations longer than <paramref name="seconds"/> (interpolated within its bin).</summary>
    public double FractionAbove(double seconds)
    {
        if (Count <= 0)
        {
            return double.NaN;
        }

        int b = BinOf(seconds);
        double above = 0;
        for (int i = b + 1; i < Bins; i++)
        {
            above += _counts[i];
        }

        double lo = LowerEdge(b);
        double hi = LowerEdge(b + 1);
        double within = b == 0 ? 0 : Math.Clamp((Math.Log(hi) - Math.Log(Math.Max(seconds, lo))) / (Math.Log(hi) - Math.Log(lo)), 0, 1);
        return Math.Clamp((above + (_counts[b] * within)) / Count, 0, 1);
    }

    /// <summary>E[min(lifetime, <paramref name="seconds"/>)]: the expected exposure under that delay (bin midpoints); NaN when empty.</summary>
    public double ExpectedMin(double seconds)
    {
        if (Count <= 0)
        {
            return double.NaN;
        }

        double sum = 0;
        for (int i = 0; i < Bins; i++)
        {
            if (_counts[i] > 0)
            {
                double mid = i == 0 ? MinSeconds / 2 : Math.Sqrt(LowerEdge(i) * LowerEdge(i + 1));
                sum += _counts[i] * Math.Min(mid, seconds);
            }
        }

        return sum / Count;
    }

    /// <summary>The <paramref name="q"/>-quantile in seconds (geometric interpolation within the bin); NaN when empty.</summary>
    public double Quantile(double q)
    {
        if (Count <= 0)
        {
            return double.NaN;
        }

        double target = q * Count;
        double seen = 0;
        for (int i = 0; i < Bins; i++)
        {
            if (seen + _counts[i] >= target && _counts[i] > 0)
            {
                double f = (target - seen) / _counts[i];
                return LowerEdge(i) * Math.Exp(f * LogRatio);
            }

            seen += _counts[i];
        }

        return LowerEdge(Bins);
    }

    private static double LowerEdge(int bin) => bin == 0 ? 0 : MinSeconds * Math.Exp(bin * LogRatio);

    private static int BinOf(double seconds)
        => seconds <= MinSeconds ? 0 : Math.Clamp((int)(Math.Log(seconds / MinSeconds) / LogRatio), 0, Bins - 1);
}
