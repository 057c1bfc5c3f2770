namespace ClusterSync.Adaptive.Model;

/// <summary>
/// A model's answer for one connection: its score (predicted ln lifetime in seconds) and the calibration bucket the
/// score falls in. Read probabilities and exposures through <see cref="LifetimeModel"/>.
/// </summary>
public readonly record struct LifetimeEstimate(float Score, int Bucket)
{
    /// <summary>The score as seconds: e^score (a central, not a mean, lifetime).</summary>
    public double TypicalLifetimeSeconds => Math.Exp(Score);
}
