namespace ClusterSync.Adaptive.Tests.Controller;

public sealed class BaselineGuardTests
{
    private const int OneSecondRegion = 2; // grid 0, 0.5, 1 s, ...: the model's 1 s delay
    private const int NeverRegion = 12;

    [Fact]
    public void Update_SparseRegionWorseThanStatic_FallsBackOnTheLongWindow()
    {
        // One ended connection every two minutes in the model's 1 s region, each living 2 s: the model syncs it
        // (1 sync, 1 s exposed) where static 3 s would not (0 syncs, 2 s): at price 10 the model costs 11 against 2.
        // Over the 30-min guard window that is ~15 outcomes, never the 30 the guard needs; over a 6-hour window it is.
        var withLong = Run(slowEvidence: true, lifetime: 2, modelDelay: 1, OneSecondRegion);
        var withoutLong = Run(slowEvidence: false, lifetime: 2, modelDelay: 1, OneSecondRegion);

        Assert.True(withLong[OneSecondRegion], "judged on the long window, the sparse region falls back to static");
        Assert.False(withoutLong[OneSecondRegion], "the 30-min window alone never holds the evidence");
    }

    [Fact]
    public void Update_SparseRegionBetterThanStatic_KeepsTheModel()
    {
        // The model never syncs connections of 0.2 s (0 syncs, 0.2 s exposed): static 3 s costs the same exposure and no
        // more syncs, so the model is not worse there and the region keeps it, whatever window judges it.
        var fallback = Run(slowEvidence: true, lifetime: 0.2, modelDelay: double.PositiveInfinity, NeverRegion);

        Assert.False(fallback[NeverRegion]);
    }

    [Fact]
    public void Update_DenseRegion_JudgedOnTheGuardWindowNotTheLongOne()
    {
        // Four hours where the model was worse in its 1 s region (2 s lives: synced at 1 s where static 3 s would not),
        // then one where it is better there (10 s lives: synced either way, 1 s exposed instead of 3): a dense region
        // has the evidence in its 30-min window, so it follows the recent hour and returns to the model although the
        // 6-hour window still says it was worse.
        var guard = new BaselineGuard(1);
        long t = 0;
        for (int m = 0; m < 240; m++)
        {
            for (int k = 0; k < 10; k++)
            {
                guard.Observe(0, 2, synced: true, 1, staticDelay: 3, OneSecondRegion, modelDelay: 1, t);
            }

            Minute(guard, ref t);
        }

        Assert.True(guard.Update(10, 30, slowEvidence: true)[OneSecondRegion]);
        for (int m = 0; m < 60; m++)
        {
            for (int k = 0; k < 10; k++)
            {
                guard.Observe(0, 10, synced: true, 1, staticDelay: 3, OneSecondRegion, modelDelay: 1, t);
            }

            Minute(guard, ref t);
        }

        Assert.False(guard.Update(10, 30, slowEvidence: true)[OneSecondRegion]);
    }

    [Fact]
    public void UpdateHeld_BehindOnBothSinceStart_HeldUntilPaidBackAndTheModelBeatsStatic()
    {
        const int NowRegion = 0;
        const int TenSecondRegion = 6;
        var guard = new BaselineGuard(1);

        // 40 connections of 1 s synced at 0.5 s (static 3 s: not synced, 1 s exposed) and 10 of 100 s never synced
        // (static: synced, 3 s exposed): 30 syncs more (√50 ≈ 7 the standard error) and 945 s more exposure.
        for (int i = 0; i < 40; i++)
        {
            guard.Observe(0, 1, synced: true, 0.5, staticDelay: 3, NowRegion, modelDelay: 0, i * 1000);
        }

        for (int i = 0; i < 10; i++)
        {
            guard.Observe(0, 100, synced: false, 100, staticDelay: 3, 12, modelDelay: double.PositiveInfinity, 40_000 + (i * 1000));
        }

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.True(guard.HeldForMessages(0), "the budget allows more exposure than static gives: adaptive must win on messages");
        Assert.Equal(BaselineGuard.RegionsPerClass, guard.RegionsGuarded(0));

        // Held on a longer delay: 5-s connections not synced where static syncs them. After 40 the account is 10 syncs
        // ahead (≥ one standard error, √90): paid back. But the model would sync them at once, and 1-s ones too (half a
        // sync more than static per connection): its path spends the 10-sync lead in 20 connections while the exposure
        // is still behind — it does not pay.
        for (int i = 0; i < 40; i++)
        {
            guard.Observe(0, 5, synced: false, 5, staticDelay: 3, NowRegion, modelDelay: 0, 100_000 + (i * 1000));
            guard.Observe(0, 1, synced: false, 1, staticDelay: 3, NowRegion, modelDelay: 0, 100_500 + (i * 1000));
        }

        Assert.True(guard.UpdateHeld(true, 30));

        // Now the model's own choice is 10 s on the 5-s ones: 30 syncs fewer than static. Read one standard error worse
        // than it is, its path would spend the lead (now 40 syncs) in about 240 connections, more than the class has seen
        // (160): it pays.
        for (int i = 0; i < 30; i++)
        {
            guard.Observe(0, 5, synced: false, 5, staticDelay: 3, TenSecondRegion, modelDelay: 10, 200_000 + (i * 1000));
        }

        Assert.False(guard.UpdateHeld(true, 30));
        Assert.False(guard.Held(0));
    }

    [Fact]
    public void UpdateHeld_BehindOnOneAxisOnly_NotHeld()
    {
        // More syncs than static but less exposure (the model syncs 1-s connections at once): the price's trade, not a loss.
        var guard = new BaselineGuard(1);
        for (int i = 0; i < 200; i++)
        {
            guard.Observe(0, 1, synced: true, 0, staticDelay: 3, 0, modelDelay: 0, i * 1000);
        }

        Assert.False(guard.UpdateHeld(budgetAllowsMoreExposure: false, minEvidence: 30));
    }

    [Fact]
    public void UpdateHeld_MessagesBehindAndRecentChoicesSpendTheExposureLead_HeldKeepingTheExposureLead()
    {
        // Behind on messages, ahead on exposure (1-s connections synced at once: 400 syncs more, 400 s less). Then the
        // budget loop buys exposure: 10-s connections never synced (a sync less, 7 s more each). Not behind on both yet
        // (370 syncs behind, 190 s ahead), but at that rate the exposure lead is gone in ~31 connections while the
        // messages are still behind: held before, keeping what the class is still ahead on (exposure).
        var guard = new BaselineGuard(1);
        for (int i = 0; i < 400; i++)
        {
            guard.Observe(0, 1, synced: true, 0, staticDelay: 3, 0, modelDelay: 0, i * 1000);
        }

        Assert.False(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30)); // exposure ahead and getting further ahead
        guard.Fade(0.01, 0.01);
        for (int i = 0; i < 30; i++)
        {
            guard.Observe(0, 10, synced: false, 10, staticDelay: 3, 12, modelDelay: double.PositiveInfinity, 400_000 + (i * 1000));
        }

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.False(guard.HeldForMessages(0));
        Assert.Equal(1, guard.Holds);
    }

    [Fact]
    public void UpdateHeld_HeldAndOneCandidatePriceBeatsStaticOnBothAxes_ThatCandidateDecides()
    {
        const int Smart = 2;
        const int Longer = BaselineGuard.CandidatePrices - 1;
        var guard = HeldClass();
        Assert.Equal(-1, guard.DominatingCandidate(0)); // no evidence at any candidate price yet

        // Ended while held: 5-s and 20-s connections (static 3 s: both synced, 3 s exposed each). At the candidate
        // "Smart" the model holds the 5-s ones 10 s (a sync less, 2 s more) and syncs the 20-s ones at once (3 s less):
        // per pair a sync and a second fewer — ahead on both axes. "Longer" holds everything 10 s: fewer syncs, but 9 s
        // more exposure per pair. The others choose static's 3 s: never ahead.
        Span<double> five = stackalloc double[BaselineGuard.CandidatePrices];
        Span<double> twenty = stackalloc double[BaselineGuard.CandidatePrices];
        for (int i = 0; i < 20; i++)
        {
            five.Fill(3);
            twenty.Fill(3);
            five[Smart] = 10;
            twenty[Smart] = 0;
            five[Longer] = 10;
            twenty[Longer] = 10;
            guard.ObserveCandidates(0, 5, staticDelay: 3, five);
            guard.ObserveCandidates(0, 20, staticDelay: 3, twenty);
        }

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.Equal(Smart, guard.DominatingCandidate(0));
    }

    [Fact]
    public void UpdateHeld_HeldAndEachCandidateAheadOnOneAxisOnly_NoCandidateDecides()
    {
        // Each candidate is ahead of static on one axis only: it trades a sync for exposure, or saves exposure at as many
        // syncs. Neither pays back a deficit on both axes: static (tilted) keeps deciding.
        var guard = HeldClass();
        Span<double> d = stackalloc double[BaselineGuard.CandidatePrices];
        for (int i = 0; i < 60; i++)
        {
            for (int k = 0; k < d.Length; k++)
            {
                d[k] = k % 2 == 0 ? 10 : 0; // 5-s connections: 10 s (a sync fewer, 2 s more) or now (as many syncs, 3 s less)
            }

            guard.ObserveCandidates(0, 5, staticDelay: 3, d);
        }

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.Equal(-1, guard.DominatingCandidate(0));
    }

    [Fact]
    public void UpdateHeld_HeldAndACandidateAheadOnMessagesByLessThanAStandardError_NoCandidateDecides()
    {
        // One candidate: 20 5-s connections held 10 s (a sync fewer, 2 s more each), 18 2-s ones synced at once (a sync
        // more, 2 s less), 10 20-s ones synced at once (3 s less). Ahead on exposure by 26 s (standard error √332 ≈ 18)
        // but on messages by 2 syncs, under the standard error of √38 ≈ 6: not evidence enough to decide the class.
        var guard = HeldClass();
        void Add(double life, double delay, int times)
        {
            Span<double> one = stackalloc double[BaselineGuard.CandidatePrices];
            one.Fill(3);
            one[7] = delay;
            for (int i = 0; i < times; i++)
            {
                guard.ObserveCandidates(0, life, staticDelay: 3, one);
            }
        }

        Add(5, 10, 20);
        Add(2, 0, 18);
        Add(20, 0, 10);

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.Equal(-1, guard.DominatingCandidate(0));
    }

    [Fact]
    public void ObserveCandidates_ClassNotHeld_NoCandidateDecides()
    {
        var guard = new BaselineGuard(1);
        Span<double> d = stackalloc double[BaselineGuard.CandidatePrices];
        d.Fill(0);
        for (int i = 0; i < 100; i++)
        {
            guard.Observe(0, 1, synced: false, 1, staticDelay: 3, OneSecondRegion, modelDelay: 1, i * 1000);
            guard.ObserveCandidates(0, 20, staticDelay: 3, d);
        }

        Assert.False(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        Assert.Equal(-1, guard.DominatingCandidate(0));
    }

    /// <summary>A class behind static 3 s on both axes since start (as in the first UpdateHeld test): held.</summary>
    private static BaselineGuard HeldClass()
    {
        var guard = new BaselineGuard(1);
        for (int i = 0; i < 40; i++)
        {
            guard.Observe(0, 1, synced: true, 0.5, staticDelay: 3, 0, modelDelay: 0, i * 1000);
        }

        for (int i = 0; i < 10; i++)
        {
            guard.Observe(0, 100, synced: false, 100, staticDelay: 3, NeverRegion, modelDelay: double.PositiveInfinity, 40_000 + (i * 1000));
        }

        Assert.True(guard.UpdateHeld(budgetAllowsMoreExposure: true, minEvidence: 30));
        return guard;
    }

    private static bool[] Run(bool slowEvidence, double lifetime, double modelDelay, int region)
    {
        var guard = new BaselineGuard(1);
        long t = 0;
        bool[] fallback = [];
        for (int m = 0; m < 6 * 60; m++)
        {
            if (m % 2 == 0)
            {
                bool synced = lifetime > modelDelay;
                guard.Observe(0, lifetime, synced, Math.Min(lifetime, modelDelay), staticDelay: 3, region, modelDelay, t);
            }

            Minute(guard, ref t);
            fallback = guard.Update(10, 30, slowEvidence);
        }

        return fallback;
    }

    private static void Minute(BaselineGuard guard, ref long t)
    {
        t += 60_000;
        guard.Fade(Math.Exp(-60.0 / 1800), Math.Exp(-60.0 / (6 * 3600)));
    }
}
