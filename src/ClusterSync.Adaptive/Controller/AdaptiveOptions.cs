namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// Adaptive mode (the node's <c>adaptive</c> section). Immutable; validated as a whole by <see cref="Validate"/>.
/// </summary>
public sealed record AdaptiveOptions
{
    /// <summary>Adaptive decisions on (otherwise the class policies alone decide).</summary>
    public bool Enabled { get; init; }

    /// <summary>The model file (a zip written by <c>clustersync train</c>); null or empty: cold start, no model.</summary>
    public string? Model { get; init; }

    /// <summary>
    /// The loss budget: the share of connection-seconds left unreplicated (Σ exposure / Σ lifetime) — the share of live
    /// connections a failover at a random instant is expected to lose. The same unit as <c>clustersync simulate</c>'s
    /// <c>adaptive@budget</c>. The feedback loop moves the price so that the realized share tracks it.
    /// </summary>
    public double LossBudget { get; init; } = 0.01;

    /// <summary>
    /// The starting price: the exposure seconds one synchronized connection is worth (its messages priced in seconds).
    /// Decisions minimize <c>price · P(synced) + E[exposure]</c>; the feedback loop then moves the price.
    /// </summary>
    public double InitialPrice { get; init; } = 5;

    /// <summary>
    /// The reference delay for classes whose policy is not <c>delayed</c> (those use their own delay): drift and the
    /// per-class statistics compare predicted and observed P(lives past it).
    /// </summary>
    public TimeSpan Checkpoint { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Classes always synchronized at once, whatever the model says. Null (the default): the class named
    /// <c>mission-critical</c>, when the policy has one.
    /// </summary>
    public IReadOnlyList<string>? NeverSkip { get; init; }

    public const string DefaultNeverSkipClass = "mission-critical";

    /// <summary>The never-skip classes in effect among <paramref name="classes"/>.</summary>
    public IReadOnlyList<string> EffectiveNeverSkip(IEnumerable<string> classes)
        => NeverSkip ?? (classes.Contains(DefaultNeverSkipClass, StringComparer.Ordinal) ? [DefaultNeverSkipClass] : []);

    /// <summary>Outcomes a class needs before its online quantiles replace its static policy (cold start).</summary>
    public int ColdStartMinSamples { get; init; } = 200;

    /// <summary>The feedback loop closes a batch of outcomes after this long or <see cref="FeedbackBatch"/> outcomes.</summary>
    public TimeSpan FeedbackInterval { get; init; } = TimeSpan.FromSeconds(1);

    public int FeedbackBatch { get; init; } = 4096;

    /// <summary>
    /// How fast the price moves: a batch covering <c>dt</c> seconds of a controller <c>age</c> seconds old (at least
    /// 5 minutes) moves the log price by <c>gain · (realized / budget − 1) · dt / age</c> (the error clamped to ±1).
    /// The 1/age schedule lets a young controller find its price quickly and then holds it nearly constant.
    /// </summary>
    public double Gain { get; init; } = 1.5;

    /// <summary>|mean predicted − mean observed| of P(lives past the checkpoint) above which a class is flagged for retraining.</summary>
    public double DriftThreshold { get; init; } = 0.15;

    /// <summary>
    /// The time constant of the realized loss the price follows (exponential window over connection-seconds, live
    /// connections included).
    /// </summary>
    public TimeSpan LossWindow { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The price's error counts for the connection-seconds behind it: a stretch of the window with few
    /// connection-seconds (against the run's average) moves the price little, a busy one more (at most twice).
    /// </summary>
    public bool ErrorWeighting { get; init; } = true;

    /// <summary>With <see cref="ErrorWeighting"/>: the largest weight a busy stretch gets.</summary>
    public double MaxErrorWeight { get; init; } = 2;

    /// <summary>
    /// With <see cref="ErrorWeighting"/>: the largest relative error over budget the price answers (under budget it is
    /// at most 1 by construction). Clamping an overshoot harder than an undershoot biases the price toward overshoot
    /// where the loss comes in lumps (sparse traffic: one long connection held is a spike of many times the budget).
    /// </summary>
    public double MaxOverError { get; init; } = 4;

    /// <summary>
    /// The price only moves for the share of recent decisions it made: while the baseline guard (or a cold-start
    /// static policy) decides instead, the error is not the price's, and integrating it would wind the price up.
    /// </summary>
    public bool HoldWhileGuarded { get; init; } = true;

    /// <summary>
    /// The baseline guard: per class and model region, fall back to the class's static policy while the model does
    /// worse there than that policy on the same ended connections.
    /// </summary>
    public bool Guard { get; init; } = true;

    /// <summary>
    /// The guard's since-start account (needs <see cref="Guard"/>): per class, what was applied against what the static
    /// policy would have done on the same ended connections, never faded (live connections' exposure beyond static's
    /// counted). A class behind the static policy on both axes at all, or on messages by more than one standard error
    /// when the budget allows more exposure than static gives, is decided by its static policy — securing the axis it is
    /// still ahead on (or the less-behind one), tilted toward it as far as the budget or the deficit's repayment needs —
    /// until it is ahead there and the model's own choices, judged on the connections ended meanwhile (faded over
    /// <see cref="GuardWindow"/>, or <see cref="GuardSlowWindow"/> while that holds too few), beat the static policy on
    /// the budget's axis. While held, the price follows the loss the model's own choices would have realized on the held
    /// class's ended connections (what is applied stays the hold's, static's or less on the secured axis), so the hold
    /// ends when the model pays at the price the budget needs. Round 7: while held, the model is also asked on each
    /// ended connection at 40 fixed candidate prices; where its choices at one of them beat the static policy on both
    /// axes (by a standard error each, on <see cref="GuardMinEvidence"/> outcomes), the held class is decided by the model
    /// at that price instead of static — a deficit on both axes is paid back on both, and the hold releases. On by
    /// default since round 8 (2026-12-06): a model no better than static on a site finds no such price and stays held on
    /// static a hair behind on messages and a hair ahead on exposure (the shipped model on the site-retraining test's day
    /// 2: 100.8 % / 99.98 % of static 3 s's) — on static's point, not worse on both. Off: a trace can end worse than
    /// static 3 s on both axes (home/lab log at 0.1: 121 % / 109 %; the site-retraining day 2 at budget 0.067–0.11).
    /// </summary>
    public bool GuardSinceStart { get; init; } = true;

    /// <summary>The time constant of the guard's evidence (older outcomes fade).</summary>
    public TimeSpan GuardWindow { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// The guard's second, longer window: a region (or class) whose evidence over <see cref="GuardWindow"/> is short of
    /// <see cref="GuardMinEvidence"/> outcomes is judged on its evidence over this window (sparse traffic). Zero: off.
    /// </summary>
    public TimeSpan GuardSlowWindow { get; init; } = TimeSpan.FromHours(6);

    /// <summary>Outcomes (faded) a region needs before the guard changes its mind about it.</summary>
    public double GuardMinEvidence { get; init; } = 30;

    /// <summary>
    /// Online per-service lifetimes (protocol × service port, learned on this site since start): a service with
    /// <see cref="ServiceMinSamples"/> (faded) outcomes is decided from its own lifetimes rather than the model's.
    /// </summary>
    public bool ServiceStats { get; init; } = true;

    public double ServiceMinSamples { get; init; } = 100;

    /// <summary>
    /// A service's own lifetimes overrule the model only where the evidence says the model does worse for that service:
    /// per service, faded over <see cref="GuardWindow"/>, what the model's own choices and the service's own rule would
    /// have cost (<c>price · syncs + exposure</c>) on the same ended connections. Once the service has
    /// <see cref="GuardMinEvidence"/> outcomes of that evidence and the model is cheaper there (by 5 %), the model decides
    /// the service again (the guard still judging it), until the service's rule is cheaper. False: a service with
    /// <see cref="ServiceMinSamples"/> outcomes always overrules the model.
    /// </summary>
    public bool ServiceEvidence { get; init; } = true;

    /// <summary>
    /// While a service has fewer than <see cref="ServiceMinSamples"/> outcomes, its lifetimes are blended with the
    /// model's distribution for the connection, the model counting as this many outcomes.
    /// </summary>
    public double ServicePriorWeight { get; init; } = 30;

    /// <summary>
    /// The time constant over which a service's lifetimes (and its evidence) fade; zero: <see cref="GuardWindow"/>.
    /// </summary>
    public TimeSpan ServiceWindow { get; init; } = TimeSpan.FromHours(2);

    /// <summary>The longest delay a service's own lifetimes may choose (they come from ended connections, short of the longest lives).</summary>
    public TimeSpan ServiceMaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often the model file is checked for a new version (besides file-system notifications).</summary>
    public TimeSpan ReloadPollInterval { get; init; } = TimeSpan.FromSeconds(2);

    public IEnumerable<string> Validate(string path)
    {
        if (!(LossBudget > 0 && LossBudget < 1))
        {
            yield return $"{path}.lossBudget: expected a share of connection-seconds left unreplicated in (0, 1), found {LossBudget}";
        }

        if (!(InitialPrice > 0 && InitialPrice <= 1e6))
        {
            yield return $"{path}.initialPrice: expected seconds of exposure per synced connection in (0, 1000000], found {InitialPrice}";
        }

        if (Checkpoint <= TimeSpan.Zero || Checkpoint > TimeSpan.FromHours(24))
        {
            yield return $"{path}.checkpoint: expected a duration in (0, 24h], found {Checkpoint}";
        }

        if (ColdStartMinSamples is < 1 or > 10_000_000)
        {
            yield return $"{path}.coldStartMinSamples: expected 1 to 10000000, found {ColdStartMinSamples}";
        }

        if (FeedbackInterval < TimeSpan.FromMilliseconds(10) || FeedbackInterval > TimeSpan.FromMinutes(10))
        {
            yield return $"{path}.feedbackInterval: expected a duration in [10ms, 10m], found {FeedbackInterval}";
        }

        if (FeedbackBatch is < 1 or > 1_000_000)
        {
            yield return $"{path}.feedbackBatch: expected 1 to 1000000, found {FeedbackBatch}";
        }

        if (!(Gain > 0 && Gain <= 5))
        {
            yield return $"{path}.gain: expected a number in (0, 5], found {Gain}";
        }

        if (!(DriftThreshold > 0 && DriftThreshold < 1))
        {
            yield return $"{path}.driftThreshold: expected a number in (0, 1), found {DriftThreshold}";
        }

        if (LossWindow < TimeSpan.FromSeconds(1) || LossWindow > TimeSpan.FromDays(1))
        {
            yield return $"{path}.lossWindow: expected a duration in [1s, 1d], found {LossWindow}";
        }

        if (!(MaxErrorWeight >= 1 && MaxErrorWeight <= 100))
        {
            yield return $"{path}.maxErrorWeight: expected 1 to 100, found {MaxErrorWeight}";
        }

        if (!(MaxOverError >= 1 && MaxOverError <= 100))
        {
            yield return $"{path}.maxOverError: expected 1 to 100, found {MaxOverError}";
        }

        if (GuardWindow < TimeSpan.FromSeconds(10) || GuardWindow > TimeSpan.FromDays(7))
        {
            yield return $"{path}.guardWindow: expected a duration in [10s, 7d], found {GuardWindow}";
        }

        if (GuardSlowWindow < TimeSpan.Zero || GuardSlowWindow > TimeSpan.FromDays(30))
        {
            yield return $"{path}.guardSlowWindow: expected a duration in [0, 30d], found {GuardSlowWindow}";
        }

        if (!(GuardMinEvidence >= 1 && GuardMinEvidence <= 1e6))
        {
            yield return $"{path}.guardMinEvidence: expected 1 to 1000000, found {GuardMinEvidence}";
        }

        if (ServiceWindow != TimeSpan.Zero && (ServiceWindow < TimeSpan.FromSeconds(10) || ServiceWindow > TimeSpan.FromDays(30)))
        {
            yield return $"{path}.serviceWindow: expected 0 (the guard window) or a duration in [10s, 30d], found {ServiceWindow}";
        }

        if (ServiceMaxDelay < TimeSpan.Zero || ServiceMaxDelay > TimeSpan.FromHours(24))
        {
            yield return $"{path}.serviceMaxDelay: expected a duration in [0, 24h], found {ServiceMaxDelay}";
        }

        if (!(ServiceMinSamples >= 1 && ServiceMinSamples <= 1e7))
        {
            yield return $"{path}.serviceMinSamples: expected 1 to 10000000, found {ServiceMinSamples}";
        }

        if (!(ServicePriorWeight >= 0 && ServicePriorWeight <= 1e7))
        {
            yield return $"{path}.servicePriorWeight: expected 0 to 10000000, found {ServicePriorWeight}";
        }

        if (ReloadPollInterval < TimeSpan.FromMilliseconds(50) || ReloadPollInterval > TimeSpan.FromHours(1))
        {
            yield return $"{path}.reloadPollInterval: expected a duration in [50ms, 1h], found {ReloadPollInterval}";
        }

        for (int i = 0; i < (NeverSkip?.Count ?? 0); i++)
        {
            if (string.IsNullOrWhiteSpace(NeverSkip![i]))
            {
                yield return $"{path}.neverSkip[{i}]: expected a service class name";
            }
        }
    }
}
