namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// "Never worse than the baseline": per ended connection the controller knows the true lifetime, so what the class's
/// static policy (its own delay, or the checkpoint, 3 s by default) would have cost and exposed, and what the model's
/// own choice would have (the model is asked again off the data-plane thread). Per region — a class and the delay the
/// model picks, so a region is the set of connections the model treats alike — the guard keeps faded sums of both and
/// falls back to the static policy where the model's cost <c>price · syncs + exposure</c> is higher, and back to the
/// model when evidence says it pays again. It also keeps the operator's running comparison (adaptive as applied vs the
/// static policy on the same ended connections, per class, since start and over the last hour). Not thread-safe: the
/// feedback loop owns it.
/// </summary>
internal sealed class BaselineGuard
{
    /// <summary>Regions per class: one per grid delay the model can choose.</summary>
    public const int RegionsPerClass = 16;

    private const int Minutes = 60;
    private const double EnterMargin = 0.05;

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

    public BaselineGuard(int classes)
    {
        _classes = Math.Max(1, classes);
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
            _sinceStart[cls].Add(synced, exposure, staticSynced, staticExposure);
            long minute = Math.DivRem(nowMs, 60_000, out long rem) - (rem < 0 ? 1 : 0);
            int i = (cls * Minutes) + (int)(((minute % Minutes) + Minutes) % Minutes);
            if (_minuteOf[i] != minute)
            {
                _minuteOf[i] = minute;
                _minutes[i] = default;
            }

            _minutes[i].Add(synced, exposure, staticSynced, staticExposure);
        }

        if (modelGrid < 0)
        {
            return;
        }

        int r = (cls * RegionsPerClass) + Math.Min(modelGrid, RegionsPerClass - 1);
        bool modelSynced = lifetime > modelDelay;
        double modelExposure = Math.Min(lifetime, modelDelay);
        _fast.Add(cls, r, synced, exposure, modelSynced, modelExposure, staticSynced, staticExposure);
        _slow.Add(cls, r, synced, exposure, modelSynced, modelExposure, staticSynced, staticExposure);
    }

    /// <summary>Older evidence weighs less (0-1): <paramref name="factor"/> for the guard window, <paramref name="slowFactor"/> for the long one.</summary>
    public void Fade(double factor, double slowFactor = 1)
    {
        _fast.Fade(factor);
        _slow.Fade(slowFactor);
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

    /// <summary>The class falls back as a whole (the model's own choices are worse than the static policy on both axes).</summary>
    public bool ClassGuarded(int cls) => _classFallback[cls];

    /// <summary>Clears the evidence and the fallbacks (a new model).</summary>
    public void Reset()
    {
        _fast.Clear();
        _slow.Clear();
        Array.Clear(_fallback);
        Array.Clear(_classFallback);
    }

    public int RegionsGuarded(int cls)
    {
        if (_classFallback[cls])
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

    private struct Window
    {
        public long Connections;
        public long AdaptiveSyncs;
        public double AdaptiveExposure;
        public long StaticSyncs;
        public double StaticExposure;

        public void Add(bool synced, double exposure, bool staticSynced, double staticExposure)
        {
            Connections++;
            AdaptiveSyncs += synced ? 1 : 0;
            AdaptiveExposure += exposure;
            StaticSyncs += staticSynced ? 1 : 0;
            StaticExposure += staticExposure;
        }

        public void Add(in Window w)
        {
            Connections += w.Connections;
            AdaptiveSyncs += w.AdaptiveSyncs;
            AdaptiveExposure += w.AdaptiveExposure;
            StaticSyncs += w.StaticSyncs;
            StaticExposure += w.StaticExposure;
        }

        public readonly BaselineWindow ToWindow()
            => new(Connections, AdaptiveSyncs * MessagesPerSync, AdaptiveExposure, StaticSyncs * MessagesPerSync, StaticExposure);
    }

    /// <summary>Messages one synchronized connection costs in the comparison: a new record and a destroy record (as in <c>simulate</c>).</summary>
    public const int MessagesPerSync = 2;
}
