using System.Reactive.Concurrency;
using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Adaptive.Tests.Controller;

public sealed class AdaptiveControllerTests
{
    // Class ids in catalog order: 0 mission-critical (full), 1 short-lived (delayed 3 s), 2 non-sync (none), 3 default (full).
    private const byte MissionCritical = 0;
    private const byte ShortLived = 1;
    private const byte NonSync = 2;
    private const byte Default = 3;

    private static readonly ServiceClassDefinition[] Classes =
    [
        new("mission-critical", SyncPolicy.Full),
        new("short-lived", SyncPolicy.Delayed(TimeSpan.FromSeconds(3))),
        new("non-sync", SyncPolicy.Never),
        new("default", SyncPolicy.Full),
    ];

    private static readonly ConnectionKey Key = ConnectionKey.IPv4(0x0A000001, 0xC0A80101, 40000, 443, 6);

    private static AdaptiveController Create(ILifetimePredictor? predictor = null, AdaptiveOptions? options = null, TimeProvider? time = null)
        => new(options ?? new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMinutes(10) },
            Classes, predictor, time ?? new FakeTimeProvider(), bufferScheduler: new HistoricalScheduler());

    [Fact]
    public void Decide_NeverSkipClass_SyncedAtOnceWhateverTheModel()
    {
        using var controller = Create(new ConstantPredictor(-1, 0f)); // the model says: never
        for (int i = 0; i < 1000; i++)
        {
            var d = controller.Decide(Key, default, MissionCritical, SyncPolicy.Full);
            Assert.Equal(SyncPolicyKind.Full, d.Kind);
            var r = controller.Revise(Key, new ConnectionEntry { State = ProtocolState.TcpFinWait }, default, false, MissionCritical, 3000);
            Assert.Equal(SyncPolicyKind.Full, r.Kind);
        }

        // The same answer for a class that may be skipped: never synced (surely short).
        Assert.Equal(SyncPolicyKind.None, controller.Decide(Key, default, Default, SyncPolicy.Full).Kind);
        Assert.Equal(1000, controller.GetStatus().DecidedNeverSkip);
    }

    [Fact]
    public void Decide_ModelChoice_NowHoldOrNeverWithItsScore()
    {
        using var now = Create(new ConstantPredictor(0, 0.95f));
        Assert.Equal(SyncPolicyKind.Full, now.Decide(Key, default, Default, SyncPolicy.Full).Kind);

        using var hold = Create(new ConstantPredictor(3000, 0.3f));
        var d = hold.Decide(Key, default, ShortLived, SyncPolicy.Delayed(TimeSpan.FromSeconds(3)));
        Assert.Equal(SyncPolicyKind.Delayed, d.Kind);
        Assert.Equal(3000, d.DelayMs);
        Assert.Equal(0.3f, d.Score);

        using var never = Create(new ConstantPredictor(-1, 0.01f));
        Assert.Equal(SyncPolicyKind.None, never.Decide(Key, default, Default, SyncPolicy.Full).Kind);
        Assert.Equal(SyncPolicyKind.None, never.Decide(Key, default, NonSync, SyncPolicy.Never).Kind);
    }

    [Fact]
    public void Decide_ColdStart_StaticPolicyUntilEnoughOutcomesThenClassLifetimes()
    {
        // Per-class cold start alone (the per-service statistics would decide this one key's service first).
        using var controller = Create(options: new AdaptiveOptions { Enabled = true, ColdStartMinSamples = 100, FeedbackInterval = TimeSpan.FromMinutes(10), ServiceStats = false });
        var delayed = SyncPolicy.Delayed(TimeSpan.FromSeconds(3));
        Assert.Equal(SyncPolicyKind.Delayed, controller.Decide(Key, default, ShortLived, delayed).Kind); // the static policy is the floor
        Assert.Equal(SyncPolicyKind.Full, controller.Decide(Key, default, Default, SyncPolicy.Full).Kind);
        Assert.Equal(2, controller.GetStatus().DecidedStatic);

        // The "short-lived" class turns out long-lived (a minute), the default class lives 200 ms.
        var outcomes = Enumerable.Range(0, 200).Select(i => Outcome(ShortLived, i * 100, 60_000, delayMs: 3000))
            .Concat(Enumerable.Range(0, 200).Select(i => Outcome(Default, i * 100, 200, delayMs: 0))).ToList();
        controller.Process(outcomes);

        Assert.Equal(SyncPolicyKind.Full, controller.Decide(Key, default, ShortLived, delayed).Kind);
        Assert.NotEqual(SyncPolicyKind.Full, controller.Decide(Key, default, Default, SyncPolicy.Full).Kind);
        var cls = controller.GetStatus().Classes[ShortLived];
        Assert.InRange(cls.ObservedLongShare, 0.95, 1.0);
        Assert.InRange(cls.LifetimeP50Seconds, 40, 90);
    }

    [Fact]
    public void Process_LifetimesShift_PriceMovesTheRightWay()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        using var controller = Create(new ConstantPredictor(-1, 0.05f), new AdaptiveOptions
        {
            Enabled = true, LossBudget = 0.01, InitialPrice = 5, FeedbackInterval = TimeSpan.FromMinutes(10),
        }, time);
        var rng = new Random(5);
        long t = 1_000_000;

        // Phase A: half the connections synced at once (live 100 s), half never synced (the model: surely short) and
        // indeed short (mean 0.2 s): unreplicated share ≈ 0.2 / 100.2 ≈ 0.002 < budget 0.01.
        double start = controller.Price;
        for (int batch = 0; batch < 20; batch++)
        {
            controller.Process(Batch(rng, ref t, neverMeanSeconds: 0.2));
            time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(t));
        }

        double afterShort = controller.Price;
        Assert.True(afterShort > start, $"under budget the price should rise (fewer messages): {start} -> {afterShort}");
        Assert.InRange(controller.RealizedLoss, 0.0005, 0.005);

        // Phase B (generated drift): the never-synced connections now live ~30 s: share ≈ 30 / 130 ≈ 0.23 > budget.
        for (int batch = 0; batch < 20; batch++)
        {
            controller.Process(Batch(rng, ref t, neverMeanSeconds: 30));
            time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(t));
        }

        double afterLong = controller.Price;
        Assert.True(afterLong < afterShort, $"over budget the price should fall (sync earlier): {afterShort} -> {afterLong}");

        // Predicted 0.05 of the never-synced live past 3 s; observed ~0.9: drift is flagged for retraining.
        var status = controller.GetStatus();
        var cls = status.Classes[Default];
        Assert.True(cls.DriftFlagged, $"drift {cls.Drift}");
        Assert.True(status.DriftHints >= 1);
    }

    [Fact]
    public void Process_LossKeepsCrossingTheBudget_PriceStepShrinks()
    {
        // Five minutes over budget (every outcome unreplicated its whole life), five under (all synced at once), for two
        // hours: the realized loss (half against a budget of half) crosses the budget 24 times, so the price's step
        // shrinks as 1/age and the price settles instead of chasing each swing of the mix.
        var (early, late) = PriceSteps(initialPrice: 5, seconds: 7200, over: s => (s / 300) % 2 == 0);

        // Gain 1.5 over an age of at least 5 min: 0.005 a second at first, 1.5 / 7200 ≈ 0.0002 two hours in.
        Assert.InRange(early, 0.0025, 0.01);
        Assert.InRange(late, early / 40, early / 12);
    }

    [Fact]
    public void Process_ErrorKeepsItsSign_PriceKeepsItsStep()
    {
        // Over budget for 50 minutes on end (a wrong start, a new site): no crossing, so the step does not shrink and
        // the price keeps moving as fast as at first rather than stalling at the wrong level.
        var (early, late) = PriceSteps(initialPrice: 1e6, seconds: 3000, over: _ => true);

        Assert.InRange(early, 0.0025, 0.01);
        Assert.InRange(late, early * 0.9, early * 1.2);
    }

    [Fact]
    public void Process_OneBatchAfterADaysSilence_CountsForItsConnectionSecondsNotTheSilence()
    {
        // Ten minutes over budget, one 100-s connection ending a second, then a day without a single outcome (a capture
        // gap, a quiet night), then one batch of one such connection over budget. Unweighted, the batch integrates the
        // error over the whole silence (the step is the gain itself, ×4.5 on the price); weighted by its
        // connection-seconds against the run's average (100 s in a 2-min window where 12,000 is usual) it barely moves it.
        double StepAfterSilence(AdaptiveOptions options)
        {
            var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
            using var controller = Create(new ConstantPredictor(-1, 0.05f), options with { Enabled = true, LossBudget = 0.5, FeedbackInterval = TimeSpan.FromMinutes(10) }, time);
            for (int s = 0; s < 600; s++)
            {
                OneSecond(time, controller, over: true);
            }

            time.Advance(TimeSpan.FromDays(1));
            return OneSecond(time, controller, over: true);
        }

        double bare = StepAfterSilence(new AdaptiveOptions { ErrorWeighting = false });
        double weighted = StepAfterSilence(new AdaptiveOptions());

        Assert.InRange(bare, 1.4, 1.6);
        Assert.InRange(weighted, 0.001, 0.03);
    }

    [Fact]
    public void Process_StaticPolicyDecidesEverything_PriceDoesNotWindUp()
    {
        // Cold start without a model: every connection gets the class's static policy, whatever the price. Half an hour
        // under budget (all synced at once) moves nothing the price decides; integrating that error would wind the
        // price up by orders of magnitude, to be paid for when the price decides again.
        double PriceAfter(AdaptiveOptions options)
        {
            var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
            using var controller = Create(null, options with
            {
                Enabled = true, LossBudget = 0.1, InitialPrice = 5, ColdStartMinSamples = 1_000_000, ServiceStats = false,
                FeedbackInterval = TimeSpan.FromMinutes(10),
            }, time);
            for (int s = 0; s < 1800; s++)
            {
                time.Advance(TimeSpan.FromSeconds(1));
                long now = time.GetUtcNow().ToUnixTimeMilliseconds();
                Assert.Equal(SyncPolicyKind.Full, controller.Decide(Key, new ConnectionEntry { CreatedMs = now }, Default, SyncPolicy.Full).Kind);
                controller.Process([Outcome(Default, now - 10_000, 10_000, delayMs: 0)]);
            }

            return controller.Price;
        }

        Assert.InRange(PriceAfter(new AdaptiveOptions()), 4.99, 5.01);
        Assert.True(PriceAfter(new AdaptiveOptions { HoldWhileGuarded = false }) > 1000);
    }

    /// <summary>
    /// One outcome a second for <paramref name="seconds"/>, over or under budget as <paramref name="over"/> says (the
    /// first minute over): the price's step (|Δ ln price|) one minute in and at the end, over budget both times.
    /// </summary>
    private static (double Early, double Late) PriceSteps(double initialPrice, int seconds, Func<int, bool> over)
    {
        var (time, controller) = PriceProbe(initialPrice);
        using (controller)
        {
            for (int s = 0; s < 60; s++)
            {
                OneSecond(time, controller, over: true);
            }

            double early = OneSecond(time, controller, over: true);
            for (int s = 61; s < seconds; s++)
            {
                OneSecond(time, controller, over(s));
            }

            return (early, OneSecond(time, controller, over: true));
        }
    }

    private static (FakeTimeProvider Time, AdaptiveController Controller) PriceProbe(double initialPrice)
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        var controller = Create(new ConstantPredictor(-1, 0.05f), new AdaptiveOptions
        {
            Enabled = true, LossBudget = 0.5, InitialPrice = initialPrice, FeedbackInterval = TimeSpan.FromMinutes(10),
        }, time);
        controller.Process([Outcome(Default, 1_000_000 - 100_000, 100_000, delayMs: -1, score: 0.05f)]);
        return (time, controller);
    }

    /// <summary>One second, one outcome of 100 s: unreplicated its whole life (over budget) or synced at once (under); the step of log price.</summary>
    private static double OneSecond(FakeTimeProvider time, AdaptiveController controller, bool over)
    {
        double before = controller.Price;
        time.Advance(TimeSpan.FromSeconds(1));
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        controller.Process([Outcome(Default, now - 100_000, 100_000, delayMs: over ? -1 : 0, score: 0.5f)]);
        return Math.Abs(Math.Log(before / controller.Price));
    }

    [Fact]
    public void Decide_FewServiceOutcomes_BlendedWithTheModelsPrior()
    {
        // The model says tcp/443 is short (never sync); the site's first 50 connections of it all lived a minute.
        using var controller = Create(new DistributionPredictor(), new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMinutes(10), InitialPrice = 5, Guard = false });
        Assert.Equal(SyncPolicyKind.None, controller.Decide(Key, default, Default, SyncPolicy.Full).Kind);

        controller.Process(Enumerable.Range(0, 50).Select(i => Outcome(Default, i * 100, 60_000, delayMs: -1)).ToList());

        // 50 outcomes against a prior worth 30: P(lives past 3 s) = 50/80, and at price 5 a short hold beats both
        // never (a minute of exposure at 62.5 %) and now (5 for certain).
        var d = controller.Decide(Key, default, Default, SyncPolicy.Full);
        Assert.Equal(SyncPolicyKind.Delayed, d.Kind);
        Assert.InRange(d.DelayMs, 1, 1000);
        Assert.Equal(50.0 / 80, d.Score, 3);

        // A model that gives no distribution is not blended: the model alone until the service has 100 outcomes.
        using var plain = Create(new ConstantPredictor(-1, 0.01f), new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMinutes(10), InitialPrice = 5, Guard = false });
        plain.Process(Enumerable.Range(0, 50).Select(i => Outcome(Default, i * 100, 60_000, delayMs: -1)).ToList());
        Assert.Equal(SyncPolicyKind.None, plain.Decide(Key, default, Default, SyncPolicy.Full).Kind);
    }

    [Fact]
    public void Process_LongConnectionsStillAlive_RealizedLossCountsThemAndNeverSyncClassApart()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        using var controller = Create(new ConstantPredictor(-1, 0.05f), new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMinutes(10) }, time);
        long t0 = time.GetUtcNow().ToUnixTimeMilliseconds();
        // 100 connections the model never syncs, still alive after 10 minutes; 100 short ones (0.1 s) that ended;
        // 100 of the operator's never-sync class, alive too.
        for (int i = 0; i < 100; i++)
        {
            controller.Decide(Key, new ConnectionEntry { CreatedMs = t0 }, Default, SyncPolicy.Full);
            controller.Decide(Key, new ConnectionEntry { CreatedMs = t0 }, Default, SyncPolicy.Full);
            controller.Decide(Key, new ConnectionEntry { CreatedMs = t0 }, NonSync, SyncPolicy.Never);
        }

        time.Advance(TimeSpan.FromMinutes(10));
        controller.Process(Enumerable.Range(0, 100).Select(_ => Outcome(Default, t0, 100, delayMs: -1, score: 0.05f)).ToList());

        // Ended-only would say 100 % but of 10 connection-seconds; with the live ones it is 100 % of 60,010 — and the
        // never-sync class's 60,000 connection-seconds are not in it but reported apart (half of all).
        var s = controller.GetStatus();
        Assert.Equal(1.0, s.RealizedLossSinceStart, 3);
        Assert.Equal(100, s.LiveConnections);
        Assert.InRange(s.NeverSyncClassShare, 0.49, 0.51);
    }

    [Fact]
    public void TryLoadModel_BadFile_RefusedWithReasonAndOldModelStays()
    {
        using var controller = Create(new ConstantPredictor(0, 0.95f, "good-v1"));
        var loader = new ScriptedLoader();
        Assert.False(controller.TryLoadModel(loader, "bad.zip", out var reason));
        Assert.Contains("featureVersion", reason, StringComparison.Ordinal);
        Assert.Equal("good-v1", controller.ModelName);
        Assert.Equal(SyncPolicyKind.Full, controller.Decide(Key, default, Default, SyncPolicy.Full).Kind);

        Assert.True(controller.TryLoadModel(loader, "good-v2.zip", out _));
        Assert.Equal("good-v2", controller.ModelName);
        var s = controller.GetStatus();
        Assert.Equal(1, s.ModelReloads);
        Assert.Equal(1, s.ModelReloadsRefused);
        Assert.Contains("featureVersion", s.LastReloadError, StringComparison.Ordinal);
    }

    [Fact]
    public void OnEnded_OutcomesStreamThroughRx_BatchClosesOnCount()
    {
        using var controller = new AdaptiveController(
            new AdaptiveOptions { Enabled = true, FeedbackBatch = 50, FeedbackInterval = TimeSpan.FromMinutes(10) }, Classes);
        using var processed = new ManualResetEventSlim();
        controller.BatchProcessed += processed.Set;
        for (int i = 0; i < 50; i++)
        {
            controller.OnEnded(Outcome(Default, i * 10, 2000, delayMs: 0));
        }

        Assert.True(processed.Wait(TimeSpan.FromSeconds(10)), "the feedback batch was never processed");
        Assert.Equal(50, controller.GetStatus().OutcomesObserved);
    }

    private static List<ConnectionOutcome> Batch(Random rng, ref long t, double neverMeanSeconds)
    {
        var list = new List<ConnectionOutcome>(1000);
        for (int i = 0; i < 1000; i++)
        {
            t += 10; // 100 per second
            if (i % 2 == 0)
            {
                list.Add(Outcome(Default, t - 100_000, 100_000, delayMs: 0, score: 0.95f));
            }
            else
            {
                long life = (long)(-Math.Log(1 - rng.NextDouble()) * neverMeanSeconds * 1000);
                list.Add(Outcome(Default, t - life, life, delayMs: -1, score: 0.05f));
            }
        }

        return list;
    }

    private static ConnectionOutcome Outcome(byte cls, long createdMs, long lifeMs, int delayMs, float score = float.NaN)
        => new(Key, cls, createdMs, createdMs + lifeMs, ConnectionEndReason.Destroyed, lifeMs > delayMs && delayMs >= 0, delayMs, score,
            lifeMs > delayMs ? 2 : 0, ProtocolState.TcpClose, default, false);

    /// <summary>A fake model: always the same delay and score (the real <see cref="LifetimeModelPredictor"/> is tested below).</summary>
    private sealed class ConstantPredictor(int delayMs, float p, string name = "constant") : ILifetimePredictor
    {
        public string Name => name;

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            probabilityLong = p;
            return delayMs;
        }
    }

    /// <summary>A fake model that says "short" (0.1 s, never past 0.5 s) and gives its distribution for blending.</summary>
    private sealed class DistributionPredictor : ILifetimePredictor
    {
        public string Name => "short";

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            probabilityLong = 0;
            return -1;
        }

        public bool TryDistribution(in ConnectionKey key, long createdMs, Span<double> survival, Span<double> exposure)
        {
            survival.Clear();
            survival[0] = 1;
            exposure.Fill(0.1);
            exposure[0] = 0;
            return true;
        }
    }

    private sealed class ScriptedLoader : IModelLoader
    {
        public bool TryLoad(string path, out ILifetimePredictor? predictor, out string reason)
        {
            if (path.StartsWith("bad", StringComparison.Ordinal))
            {
                predictor = null;
                reason = $"{path}: featureVersion: expected 1, found 7";
                return false;
            }

            predictor = new ConstantPredictor(3000, 0.5f, Path.GetFileNameWithoutExtension(path));
            reason = "";
            return true;
        }
    }
}
