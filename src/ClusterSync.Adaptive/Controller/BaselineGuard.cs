namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// "Never worse than the baseline": per ended connection the controller knows the true lifetime, so what the class's
/// static policy (its own delay, or the checkpoint, 3 s by default) would have cost and exposed, and what the model's
/// own choice would have (the model is asked again off the data-plane thread). Per region — a class and the delay the
/// model picks, so a region is the set of connections the model treats alike — the guard keeps faded sums of both and
/// falls back to the static policy where the model's cost <c>price · syncs + exposure</c> is higher, and back to the
/// model when evidence says it pays again. It also keeps the operator's running comparison (adaptive as applied vs the
/// static policy on the same ended connections, per class, since start and over the last hour). That since-start
/// account — the numbers <c>/status</c> shows and <c>simulate</c> reports — is also a guard of its own
/// (<see cref="UpdateHeld"/>): a class behind the static policy on both axes since start is held on the static policy,
/// tilted toward the axis adaptive must win, until that axis is paid back and the model's
/// own choices beat the static policy there again. Not thread-safe: the feedback loop owns it.
/// </summary>
internal sealed class BaselineGuard
{
    /// <summary>Regions per class: one per grid delay the model can choose.</summary>
    public const int RegionsPerClass = 16;

    private const int Minutes = 60;
    private const double EnterMargin = 0.05;

    /// <summary>
    /// Standard errors (of the sum of per-connection differences, applied − static) by which a class must be behind on
    /// at least one axis, while behind on the other too, before the since-start account holds it; and by which it must
    /// be ahead again on its target axis before it lets the model decide again.
    /// </summary>
    private const double HoldZ = 1;

    /// <summary>
    /// Standard errors (of the per-connection mean differences) by which the model's own choices, on the connections
    /// ended while held, are taken worse than they read before the account projects their path (<see cref="PathEntersWorse"/>).
    /// </summary>
    private const double ReturnZ = 1;

    private readonly int _classes;
    private readonly bool[] _fallback = new bool[256 * RegionsPerClass];
    private readonly bool[] _classFallback = new bool[256];

    // The evidence, faded over the guard window; and the same sums faded over a longer window, read where the short
    // one holds too few outcomes to judge (sparse traffic: a region that never gathers the evidence in half an hour
    // would never be judged at all).
    private readonly Evidence _fast = new();
    private readonly Evidence _slow = new();
    private readonly Window[] _sinceStart;
    private readonly Window[] _minutes;
    private readonly long[] _minuteOf;

    // The since-start account's verdict per class: held (decided by the static policy, tilted), toward which axis
    // (true: fewer messages; false: less exposure), and since the hold began the model's own choices against static.
    private readonly bool[] _held;
    private readonly bool[] _heldForMessages;
    private readonly HoldEvidence[] _sinceHold;
    private readonly HoldEvidence[] _sinceHoldSlow;
    private long _holds;

    // While a class is held: per class and candidate price (class · CandidatePrices + k), the model's counterfactual
    // choices at that price against static on the same ended connections, faded like the hold's other evidence; and
    // the candidate that dominates static on both axes (−1: none; the hold decides by static, tilted).
    private readonly HoldEvidence[] _candidates;
    private readonly HoldEvidence[] _candidatesSlow;
    private readonly int[] _dominating;

    public BaselineGuard(int classes)
    {
        _classes = Math.Max(1, classes);
        _held = new bool[_classes];
        _heldForMessages = new bool[_classes];
        _sinceHold = new HoldEvidence[_classes];
        _sinceHoldSlow = new HoldEvidence[_classes];
        _candidates = new HoldEvidence[_classes * CandidatePrices];
        _candidatesSlow = new HoldEvidence[_classes * CandidatePrices];
        _dominating = new int[_classes];
        Array.Fill(_dominating, -1);
        _sinceStart = new Window[_classes];
        _minutes = new Window[_classes * Minutes];
        _minuteOf = new long[_classes * Minutes];
        Array.Fill(_minuteOf, long.MinValue);
    }

    /// <summary>
    /// One ended connection: its lifetime, what was applied (synced, exposure), the class's static delay, and the model's
    /// own choice (grid index and delay; index −1 when there is no model).
    /// </summary>
    public void Observe(byte cls, double lifetime, bool synced, double exposure, double staticDelay, int modelGrid, double modelDelay, long nowMs)
    {
        bool staticSynced = lifetime > staticDelay;
        double staticExposure = Math.Min(lifetime, staticDelay);
        if (cls < _classes)
        {
            _sinceStart[cls].Add(synced, exposure, staticSynced, staticExposure, lifetime);
            long minute = Math.DivRem(nowMs, 60_000, out long rem) - (rem < 0 ? 1 : 0);
            int i = (cls * Minutes) + (int)(((minute % Minutes) + Minutes) % Minutes);
            if (_minuteOf[i] != minute)
            {
                _minuteOf[i] = minute;
                _minutes[i] = default;
            }

            _minutes[i].Add(synced, exposure, staticSynced, staticExposure, lifetime);
        }

        if (modelGrid < 0)
        {
            return;
        }

        int r = (cls * RegionsPerClass) + Math.Min(modelGrid, RegionsPerClass - 1);
        bool modelSynced = lifetime > modelDelay;
        double modelExposure = Math.Min(lifetime, modelDelay);
        if (cls < _classes && _held[cls])
        {
            _sinceHold[cls].Add(modelSynced, modelExposure, staticSynced, staticExposure);
            _sinceHoldSlow[cls].Add(modelSynced, modelExposure, staticSynced, staticExposure);
        }

        _fast.Add(cls, r, synced, exposure, modelSynced, modelExposure, staticSynced, staticExposure);
        _slow.Add(cls, r, synced, exposure, modelSynced, modelExposure, staticSynced, staticExposure);
    }

    /// <summary>
    /// Candidate prices a held class is judged at (<see cref="CandidatePrice"/>): a fixed grid, not one around the price
    /// of the moment — while a class is held the price can move far from where the model beats static (a model that
    /// knows every lifetime, held at 107 % / 100 % with the price run off: the window is just above the static delay).
    /// </summary>
    public const int CandidatePrices = 40;

    /// <summary>Candidate price <paramref name="k"/>: 2^((k − 12) / 2) exposure-seconds per sync, 1/64 to 11,585 in steps of √2.</summary>
    public static double CandidatePrice(int k) => s_candidatePrices[k];

    private static readonly double[] s_candidatePrices = [.. Enumerable.Range(0, CandidatePrices).Select(k => Math.Pow(2, (k - 12) / 2.0))];

    /// <summary>
    /// One ended connection of a held class (<see cref="Held"/>; ignored otherwise): the delays the model would have
    /// chosen for it at each candidate price (<paramref name="candidateDelays"/>, <see cref="CandidatePrices"/> of them,
    /// seconds), against the class's static delay, on its true lifetime.
    /// </summary>
    public void ObserveCandidates(byte cls, double lifetime, double staticDelay, ReadOnlySpan<double> candidateDelays)
    {
        if (cls >= _classes || !_held[cls])
        {
            return;
        }

        bool staticSynced = lifetime > staticDelay;
        double staticExposure = Math.Min(lifetime, staticDelay);
        int row = cls * CandidatePrices;
        for (int k = 0; k < CandidatePrices && k < candidateDelays.Length; k++)
        {
            double d = candidateDelays[k];
            bool synced = lifetime > d;
            double exposure = Math.Min(lifetime, d);
            _candidates[row + k].Add(synced, exposure, staticSynced, staticExposure);
            _candidatesSlow[row + k].Add(synced, exposure, staticSynced, staticExposure);
        }
    }

    /// <summary>
    /// The candidate price (index into <see cref="CandidatePrice"/>) at which a held class is decided by the model, as
    /// of the last <see cref="UpdateHeld"/>: the model's choices there, on at least the minimum evidence of (faded)
    /// connections ended while held, beat static on both axes by <see cref="HoldZ"/> standard errors each — the one with
    /// the largest smaller relative gain. −1: none (static, tilted, decides).
    /// </summary>
    public int DominatingCandidate(int cls) => cls < _classes && _held[cls] ? _dominating[cls] : -1;

    private int FindDominating(int cls, double minEvidence)
    {
        int best = -1;
        double bestGain = 0;
        int row = cls * CandidatePrices;
        for (int k = 0; k < CandidatePrices; k++)
        {
            var h = _candidates[row + k].N >= minEvidence ? _candidates[row + k] : _candidatesSlow[row + k];
            if (h.N < minEvidence)
            {
                continue;
            }

            double syncs = h.StaticSyncs - h.ModelSyncs;
            double exposure = h.StaticExposure - h.ModelExposure;
            if (syncs <= 0 || exposure <= 0 || syncs < HoldZ * Math.Sqrt(h.SyncsDiffering) || exposure < HoldZ * Math.Sqrt(h.ExposureDiffSquares))
            {
                continue;
            }

            double gain = Math.Min(syncs / Math.Max(1, h.StaticSyncs), exposure / Math.Max(1e-3, h.StaticExposure));
            if (gain > bestGain)
            {
                bestGain = gain;
                best = k;
            }
        }

        return best;
    }

    /// <summary>Older evidence weighs less (0-1): <paramref name="factor"/> for the guard window, <paramref name="slowFactor"/> for the long one.</summary>
    public void Fade(double factor, double slowFactor = 1)
    {
        _fast.Fade(factor);
        _slow.Fade(slowFactor);
        for (int c = 0; c < _classes; c++)
        {
            _sinceHold[c].Fade(factor);
            _sinceHoldSlow[c].Fade(slowFactor);
            if (_held[c])
            {
                for (int k = c * CandidatePrices; k < (c + 1) * CandidatePrices; k++)
                {
                    _candidates[k].Fade(factor);
                    _candidatesSlow[k].Fade(slowFactor);
                }
            }
        }
    }

    /// <summary>
    /// Updates which regions fall back at <paramref name="price"/> and returns a copy for the decision state (index
    /// <c>class · 16 + model grid index</c>). A region judges on its evidence over the guard window, or over the long
    /// window while the guard window holds fewer than <paramref name="minEvidence"/> (faded) outcomes; with too few in
    /// both it keeps its state. A whole class falls back when what was applied there is worse than the static policy on
    /// both axes at once (more syncs and more exposure: the price moving to meet the budget cannot excuse that), and
    /// returns when the model's own choices on the same connections no longer are.
    /// </summary>
    public bool[] Update(double price, double minEvidence, bool slowEvidence = true)
    {
        var slow = slowEvidence ? _slow : null;
        for (int c = 0; c < 256; c++)
        {
            var e = _fast.ClassN[c] >= minEvidence ? _fast : slow?.ClassN[c] >= minEvidence ? slow : null;
            if (e is null)
            {
                continue;
            }

            if (!_classFallback[c])
            {
                if (e.AppliedSyncs[c] > e.ClassStaticSyncs[c] * (1 + EnterMargin) && e.AppliedExposure[c] > e.ClassStaticExposure[c] * (1 + EnterMargin))
                {
                    _classFallback[c] = true;
                }
            }
            else if (!(e.ClassModelSyncs[c] > e.ClassStaticSyncs[c] && e.ClassModelExposure[c] > e.ClassStaticExposure[c]))
            {
                _classFallback[c] = false;
                foreach (var x in new[] { _fast, _slow })
                {
                    x.AppliedSyncs[c] = x.ClassStaticSyncs[c]; // what was applied meanwhile was the static policy
                    x.AppliedExposure[c] = x.ClassStaticExposure[c];
                }
            }
        }

        for (int r = 0; r < _fallback.Length; r++)
        {
            var e = _fast.N[r] >= minEvidence ? _fast : slow?.N[r] >= minEvidence ? slow : null;
            if (e is null)
            {
                continue;
            }

            double model = (price * e.ModelSyncs[r]) + e.ModelExposure[r];
            double baseline = (price * e.StaticSyncs[r]) + e.StaticExposure[r];
            _fallback[r] = _fallback[r] ? model > baseline : model > baseline * (1 + EnterMargin) + 1e-9;
        }

        var copy = (bool[])_fallback.Clone();
        for (int c = 0; c < 256; c++)
        {
            if (_classFallback[c])
            {
                Array.Fill(copy, true, c * RegionsPerClass, RegionsPerClass);
            }
        }

        return copy;
    }

    /// <summary>
    /// The since-start account's verdict, per class (the live connections' exposure beyond static's,
    /// <paramref name="liveExposureExcess"/>, counted). A class with at least <paramref name="minEvidence"/> ended
    /// connections since start is held when it is behind the static policy on both axes at all, or on the way there:
    /// what was applied recently (per connection, against static, over the guard window or the long one) leads its
    /// totals there within as many connections again as it has seen. Held, it secures one axis
    /// (<see cref="HeldForMessages"/>): the one it is still ahead on, or, behind on both, the one less behind relative to
    /// static (<paramref name="budgetAllowsMoreExposure"/> breaks a tie toward messages). It returns to the model when
    /// the account is ahead on that axis by <see cref="HoldZ"/> standard errors and the model's own choices, on at
    /// least <paramref name="minEvidence"/> (faded) connections ended since the hold began, asked at the price of the
    /// moment (which keeps learning from them) and read <see cref="ReturnZ"/> standard errors worse than they are,
    /// would not lead the totals to "behind on both" within that horizon. While held, the candidate price whose model
    /// choices beat static on both axes is found again on each call (<see cref="DominatingCandidate"/>): the class is
    /// decided by the model there instead of static. Returns whether any class is held.
    /// </summary>
    public bool UpdateHeld(bool budgetAllowsMoreExposure, double minEvidence, double liveExposureExcess = 0)
    {
        bool any = false;
        for (int c = 0; c < _classes; c++)
        {
            // The live connections' exposure beyond what static would have had on them (a lower bound, for all classes
            // together): a connection never synced that lives for hours is behind long before it ends.
            var w = _sinceStart[c];
            if (w.Connections > 0)
            {
                w.AdaptiveExposure += liveExposureExcess;
                w.ExposureDiffSquares += liveExposureExcess * liveExposureExcess;
            }

            // The axis adaptive must win: messages when the budget allows more exposure than static gives (the budget
            // loop spends it, so exposure ends above static's and only fewer messages can pay for it), else exposure —
            // unless it is behind on both and exposure is the further behind (relative to what static costs there),
            // which a tilt toward less exposure could never pay back (a connection exposed for hours against seconds).
            bool behindOnBoth = w.BehindOnBoth(0);
            bool forMessages = budgetAllowsMoreExposure || (behindOnBoth && w.RelativeExposureDeficit >= w.RelativeSyncDeficit);
            if (!_held[c])
            {
                // Behind on both at all, or on the way there: the per-connection rates of what was applied recently
                // (the guard window, or the long one while that holds too few) lead the totals into "behind on both"
                // within as many connections again as the class has seen (e.g. a budget loop buying exposure while the
                // class is still behind on messages, faster than its exposure lead can absorb).
                var e = _fast.ClassN[c] >= minEvidence ? _fast : _slow.ClassN[c] >= minEvidence ? _slow : null;
                bool onTheWay = e is not null && PathEntersWorse(w, (e.AppliedSyncs[c] - e.ClassStaticSyncs[c]) / e.ClassN[c],
                    (e.AppliedExposure[c] - e.ClassStaticExposure[c]) / e.ClassN[c], Math.Max(w.Connections, minEvidence));
                if (w.Connections >= minEvidence && (behindOnBoth || onTheWay))
                {
                    _held[c] = true;
                    _sinceHold[c] = default;
                    _sinceHoldSlow[c] = default;
                    Array.Clear(_candidates, c * CandidatePrices, CandidatePrices);
                    Array.Clear(_candidatesSlow, c * CandidatePrices, CandidatePrices);
                    _holds++;
                }
            }

            if (_held[c])
            {
                // The axis the hold secures: the one the class is still ahead on (keep the lead: static, or a tilt
                // toward it, cannot lose it), or, behind on both, the one less behind relative to static.
                bool aheadOnMessages = w.AdaptiveSyncs < w.StaticSyncs;
                bool aheadOnExposure = w.AdaptiveExposure < w.StaticExposure;
                bool secureMessages = aheadOnMessages != aheadOnExposure ? aheadOnMessages
                    : aheadOnMessages ? forMessages : w.RelativeSyncDeficit <= w.RelativeExposureDeficit;
                _heldForMessages[c] = secureMessages;
                // The model's own choices, asked at the price of the moment (the price keeps learning from them while
                // the class is held), judged over the guard window — over the long one while that holds too few.
                var h = _sinceHold[c].N >= minEvidence ? _sinceHold[c] : _sinceHoldSlow[c];
                bool paidBack = w.Ahead(secureMessages, HoldZ);
                bool modelPays = h.N >= minEvidence && !PathEntersWorse(w,
                    ((h.ModelSyncs - h.StaticSyncs) / h.N) + (ReturnZ * Math.Sqrt(h.SyncsDiffering) / h.N),
                    ((h.ModelExposure - h.StaticExposure) / h.N) + (ReturnZ * Math.Sqrt(h.ExposureDiffSquares) / h.N),
                    Math.Max(w.Connections, minEvidence));
                if (paidBack && modelPays)
                {
                    _held[c] = false;
                }
            }

            _dominating[c] = _held[c] ? FindDominating(c, minEvidence) : -1;

            any |= _held[c];
        }

        return any;
    }

    /// <summary>
    /// Whether the since-start totals <paramref name="w"/>, moved on by <paramref name="syncRate"/> syncs and
    /// <paramref name="exposureRate"/> exposure-seconds per connection (each against the static policy), are behind the
    /// static policy on both axes at once within <paramref name="horizon"/> connections (now included).
    /// </summary>
    private static bool PathEntersWorse(in Window w, double syncRate, double exposureRate, double horizon)
    {
        var (mLo, mHi) = BehindWhile(w.AdaptiveSyncs - w.StaticSyncs, syncRate);
        var (eLo, eHi) = BehindWhile(w.AdaptiveExposure - w.StaticExposure, exposureRate);
        double lo = Math.Max(mLo, eLo);
        return lo <= horizon && lo < Math.Min(mHi, eHi);

        // The connections k ≥ 0 (an interval) after which a deficit d moving by r per connection is positive.
        static (double Lo, double Hi) BehindWhile(double d, double r)
            => r > 0 ? (Math.Max(0, -d / r), double.PositiveInfinity)
                : d <= 0 ? (1, 0)
                : r < 0 ? (0, d / -r)
                : (0, double.PositiveInfinity);
    }

    /// <summary>
    /// The lead a held class keeps on the axis it secures (<paramref name="messages"/>: syncs; else exposure-seconds):
    /// <see cref="HoldZ"/> standard errors of its since-start difference from static on that axis. A hold that only
    /// kept the axis at static's total (lead 0) would leave the run's end to chance: a class held on static's point
    /// ends a hair either side of it (the generator day at budget 0.19: 100.66 % of static's messages at 100.0016 % of
    /// its exposure).
    /// </summary>
    public double SecuredMargin(int cls, bool messages)
    {
        if (cls >= _classes)
        {
            return 0;
        }

        var w = _sinceStart[cls];
        return HoldZ * Math.Sqrt(messages ? w.SyncsDiffering : w.ExposureDiffSquares);
    }

    /// <summary>The class is held on the static policy by the since-start account.</summary>
    public bool Held(int cls) => cls < _classes && _held[cls];

    /// <summary>A held class is tilted toward fewer messages (true) or less exposure (false).</summary>
    public bool HeldForMessages(int cls) => cls < _classes && _heldForMessages[cls];

    /// <summary>Times a class was held since start (all classes).</summary>
    public long Holds => _holds;

    /// <summary>The class falls back as a whole (the model's own choices are worse than the static policy on both axes).</summary>
    public bool ClassGuarded(int cls) => _classFallback[cls];

    /// <summary>Clears the evidence and the fallbacks (a new model).</summary>
    public void Reset()
    {
        _fast.Clear();
        _slow.Clear();
        Array.Clear(_fallback);
        Array.Clear(_classFallback);
        Array.Clear(_held);
        Array.Clear(_sinceHold);
        Array.Clear(_sinceHoldSlow);
        Array.Clear(_candidates);
        Array.Clear(_candidatesSlow);
        Array.Fill(_dominating, -1);
    }

    public int RegionsGuarded(int cls)
    {
        if (_classFallback[cls] || Held(cls))
        {
            return RegionsPerClass;
        }

        int n = 0;
        for (int g = 0; g < RegionsPerClass; g++)
        {
            n += _fallback[(cls * RegionsPerClass) + g] ? 1 : 0;
        }

        return n;
    }

    public BaselineWindow SinceStart(int cls) => cls < _classes ? _sinceStart[cls].ToWindow() : BaselineWindow.Empty;

    public BaselineWindow LastHour(int cls, long nowMs)
    {
        if (cls >= _classes)
        {
            return BaselineWindow.Empty;
        }

        long minute = Math.DivRem(nowMs, 60_000, out long rem) - (rem < 0 ? 1 : 0);
        var sum = default(Window);
        for (int m = 0; m < Minutes; m++)
        {
            int i = (cls * Minutes) + m;
            if (_minuteOf[i] != long.MinValue && _minuteOf[i] > minute - Minutes && _minuteOf[i] <= minute)
            {
                sum.Add(_minutes[i]);
            }
        }

        return sum.ToWindow();
    }

    /// <summary>Faded sums per class (as applied, the model's own choices, the static policy) and per region (the model's own choices, the static policy), all on the same ended connections.</summary>
    private sealed class Evidence
    {
        public readonly double[] ClassN = new double[256];
        public readonly double[] AppliedSyncs = new double[256];
        public readonly double[] AppliedExposure = new double[256];
        public readonly double[] ClassModelSyncs = new double[256];
        public readonly double[] ClassModelExposure = new double[256];
        public readonly double[] ClassStaticSyncs = new double[256];
        public readonly double[] ClassStaticExposure = new double[256];
        public readonly double[] N = new double[256 * RegionsPerClass];
        public readonly double[] ModelSyncs = new double[256 * RegionsPerClass];
        public readonly double[] ModelExposure = new double[256 * RegionsPerClass];
        public readonly double[] StaticSyncs = new double[256 * RegionsPerClass];
        public readonly double[] StaticExposure = new double[256 * RegionsPerClass];

        public void Add(byte cls, int r, bool synced, double exposure, bool modelSynced, double modelExposure, bool staticSynced, double staticExposure)
        {
            ClassN[cls]++;
            AppliedSyncs[cls] += synced ? 1 : 0;
            AppliedExposure[cls] += exposure;
            ClassModelSyncs[cls] += modelSynced ? 1 : 0;
            ClassModelExposure[cls] += modelExposure;
            ClassStaticSyncs[cls] += staticSynced ? 1 : 0;
            ClassStaticExposure[cls] += staticExposure;
            N[r]++;
            ModelSyncs[r] += modelSynced ? 1 : 0;
            ModelExposure[r] += modelExposure;
            StaticSyncs[r] += staticSynced ? 1 : 0;
            StaticExposure[r] += staticExposure;
        }

        public void Fade(double factor)
        {
            if (factor >= 1)
            {
                return;
            }

            for (int c = 0; c < 256; c++)
            {
                if (ClassN[c] > 0)
                {
                    ClassN[c] *= factor;
                    AppliedSyncs[c] *= factor;
                    AppliedExposure[c] *= factor;
                    ClassModelSyncs[c] *= factor;
                    ClassModelExposure[c] *= factor;
                    ClassStaticSyncs[c] *= factor;
                    ClassStaticExposure[c] *= factor;
                }
            }

            for (int r = 0; r < N.Length; r++)
            {
                if (N[r] > 0)
                {
                    N[r] *= factor;
                    ModelSyncs[r] *= factor;
                    ModelExposure[r] *= factor;
                    StaticSyncs[r] *= factor;
                    StaticExposure[r] *= factor;
                }
            }
        }

        public void Clear()
        {
            foreach (var a in new[] { ClassN, AppliedSyncs, AppliedExposure, ClassModelSyncs, ClassModelExposure, ClassStaticSyncs, ClassStaticExposure, N, ModelSyncs, ModelExposure, StaticSyncs, StaticExposure })
            {
                Array.Clear(a);
            }
        }
    }

    /// <summary>
    /// Faded sums, over the connections of a held class ended since the hold began, of the model's own choices (at the
    /// price of the moment) against the static policy, with the per-connection differences' squares.
    /// </summary>
    private struct HoldEvidence
    {
        public double N;
        public double ModelSyncs;
        public double StaticSyncs;
        public double SyncsDiffering;
        public double ModelExposure;
        public double StaticExposure;
        public double ExposureDiffSquares;

        public void Add(bool synced, double exposure, bool staticSynced, double staticExposure)
        {
            N++;
            ModelSyncs += synced ? 1 : 0;
            StaticSyncs += staticSynced ? 1 : 0;
            SyncsDiffering += synced != staticSynced ? 1 : 0;
            ModelExposure += exposure;
            StaticExposure += staticExposure;
            double d = exposure - staticExposure;
            ExposureDiffSquares += d * d;
        }

        public void Fade(double factor)
        {
            if (factor >= 1 || N <= 0)
            {
                return;
            }

            N *= factor;
            ModelSyncs *= factor;
            StaticSyncs *= factor;
            SyncsDiffering *= factor;
            ModelExposure *= factor;
            StaticExposure *= factor;
            ExposureDiffSquares *= factor;
        }
    }

    /// <summary>
    /// Sums over ended connections of one policy (as applied, or the model's own choices) against the static policy on
    /// the same connections, with the sums of squared per-connection differences (the differences' standard error).
    /// </summary>
    private struct Window
    {
        public long Connections;
        public long AdaptiveSyncs;
        public double AdaptiveExposure;
        public long StaticSyncs;
        public double StaticExposure;
        public double Lifetime;
        public long SyncsDiffering;
        public double ExposureDiffSquares;

        public void Add(bool synced, double exposure, bool staticSynced, double staticExposure, double lifetime)
        {
            Connections++;
            AdaptiveSyncs += synced ? 1 : 0;
            AdaptiveExposure += exposure;
            StaticSyncs += staticSynced ? 1 : 0;
            StaticExposure += staticExposure;
            Lifetime += lifetime;
            SyncsDiffering += synced != staticSynced ? 1 : 0;
            double d = exposure - staticExposure;
            ExposureDiffSquares += d * d;
        }

        public void Add(in Window w)
        {
            Connections += w.Connections;
            AdaptiveSyncs += w.AdaptiveSyncs;
            AdaptiveExposure += w.AdaptiveExposure;
            StaticSyncs += w.StaticSyncs;
            StaticExposure += w.StaticExposure;
            Lifetime += w.Lifetime;
            SyncsDiffering += w.SyncsDiffering;
            ExposureDiffSquares += w.ExposureDiffSquares;
        }

        /// <summary>How far behind the static policy on each axis, relative to what static costs there.</summary>
        public readonly double RelativeSyncDeficit => (AdaptiveSyncs - StaticSyncs) / Math.Max(1.0, StaticSyncs);

        public readonly double RelativeExposureDeficit => (AdaptiveExposure - StaticExposure) / Math.Max(1e-3, StaticExposure);

        /// <summary>Behind the static policy on both axes, on at least one by more than <paramref name="z"/> standard errors.</summary>
        public readonly bool BehindOnBoth(double z)
        {
            long syncs = AdaptiveSyncs - StaticSyncs;
            double exposure = AdaptiveExposure - StaticExposure;
            return syncs > 0 && exposure > 0 && (syncs > z * Math.Sqrt(SyncsDiffering) || exposure > z * Math.Sqrt(ExposureDiffSquares));
        }

        /// <summary>Ahead of the static policy on one axis (messages, or exposure) by at least <paramref name="z"/> standard errors (and at all).</summary>
        public readonly bool Ahead(bool messages, double z)
            => messages
                ? StaticSyncs - AdaptiveSyncs > 0 && StaticSyncs - AdaptiveSyncs >= z * Math.Sqrt(SyncsDiffering)
                : StaticExposure - AdaptiveExposure > 0 && StaticExposure - AdaptiveExposure >= z * Math.Sqrt(ExposureDiffSquares);

        public readonly BaselineWindow ToWindow()
            => new(Connections, AdaptiveSyncs * MessagesPerSync, AdaptiveExposure, StaticSyncs * MessagesPerSync, StaticExposure);
    }

    /// <summary>Messages one synchronized connection costs in the comparison: a new record and a destroy record (as in <c>simulate</c>).</summary>
    public const int MessagesPerSync = 2;
}
