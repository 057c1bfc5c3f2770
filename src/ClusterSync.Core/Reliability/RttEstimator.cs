namespace ClusterSync.Reliability;

/// <summary>
/// A smoothed round-trip estimate (RFC 6298: <c>SRTT ← 7/8 SRTT + 1/8 R</c>, <c>RTTVAR ← 3/4 RTTVAR + 1/4 |SRTT − R|</c>,
/// the first sample sets SRTT = R and RTTVAR = R/2). <see cref="RetryMs"/>, SRTT + 4 RTTVAR, is how long a request
/// may take before asking again is not a duplicate of a request still in flight. Not thread-safe: the owner's lock.
/// </summary>
internal sealed class RttEstimator
{
    /// <summary>The most <see cref="RetryMs"/> says (a sample this long is a stall, not a round trip).</summary>
    public const double MaxRetryMs = 5_000;

    /// <summary>Smoothed round trip in milliseconds; 0 before the first sample.</summary>
    public double SmoothedMs { get; private set; }

    /// <summary>Round-trip variation in milliseconds.</summary>
    public double VariationMs { get; private set; }

    /// <summary>Samples taken.</summary>
    public long Samples { get; private set; }

    /// <summary>SRTT + 4 RTTVAR, at most <see cref="MaxRetryMs"/>; 0 before the first sample (the caller's own floor applies).</summary>
    public double RetryMs => Math.Min(MaxRetryMs, SmoothedMs + (4 * VariationMs));

    /// <summary>Takes one round-trip sample; a negative or non-finite one is ignored.</summary>
    public void Add(double sampleMs)
    {
        if (!(sampleMs >= 0 && sampleMs <= MaxRetryMs))
        {
            return;
        }

        if (Samples == 0)
        {
            SmoothedMs = sampleMs;
            VariationMs = sampleMs / 2;
        }
        else
        {
            VariationMs = (0.75 * VariationMs) + (0.25 * Math.Abs(SmoothedMs - sampleMs));
            SmoothedMs = (0.875 * SmoothedMs) + (0.125 * sampleMs);
        }

        Samples++;
    }
}
