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
    private readonly double[] _n;
    private readonly double[] _modelSyncs;
    private readonly double[] _modelExposure;
    private readonly double[] _staticSyncs;
    private readonly double[] _staticExposure;
    private readonly bool[] _fallback = new bool[256 * RegionsPerClass];
    // Per class (faded): as applied, the model's own choices, the static policy — all on the same ended connections.
    private readonly double[] _classN = new double[256];
    private readonly double[] _appliedSyncs = new double[256];
    private readonly double[] _appliedExposure = new double[256];
    private readonly double[] _classModelSyncs = new double[256];
    private readonly double[] _classModelExposure = new double[256];
    private readonly double[] _classStaticSyncs = new double[256];
    private readonly double[] _classStaticExposure = new double[256];
    private readonly bool[] _classFallback = new bool[256];
    private readonly Window[] _sinceStart;
    private readonly Window[] _minutes;
    private readonly long[] _minuteOf;

    public BaselineGuard(int classes)
    {
        _classes = Math.Max(1, classes);
        int regions = 256 * RegionsPerClass;
        _n = new double[regions];
        _modelSyncs = new double[regions];
        _modelExposure = new double[regions];
        _staticSyncs = new double[regions];
        _staticExposure = new double[regions];
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

        _classN[cls]++;
        _appliedSyncs[cls] += synced ? 1 : 0;
        _appliedExposure[cls] += exposure;
        _classModelSyncs[cls] += lifetime > modelDelay ? 1 : 0;
        _classModelExposure[cls] += Math.Min(lifetime, modelDelay);
        _classStaticSyncs[cls] += staticSynced ? 1 : 0;
        _classStaticExposure[cls] += staticExposure;

        int r = (cls * RegionsPerClass) + Math.Min(modelGrid, RegionsPerClass - 1);
        _n[r]++;
        _modelSyncs[r] += lifetime > modelDelay ? 1 : 0;
        _modelExposure[r] += Math.Min(lifetime, modelDelay);
        _staticSyncs[r] += staticSynced ? 1 : 0;
        _staticExposure[r] += staticExposure;
    }

    /// <summary>Older evidence weighs less (0-1).</summary>
    public void Fade(double factor)
    {
        if (factor >= 1)
        {
            return;
        }

        for (int c = 0; c < 256; c++)
        {
            _classN[c] *= factor;
            _appliedSyncs[c] *= factor;
            _appliedExposure[c] *= factor;
            _classModelSyncs[c] *= factor;
            _classModelExposure[c] *= factor;
            _classStaticSyncs[c] *= factor;
            _classStaticExposure[c] *= factor;
        }

        for (int r = 0; r < _n.Length; r++)
        {
            if (_n[r] > 0)
            {
                _n[r] *= factor;
                _modelSyncs[r] *= factor;
                _modelExposure[r] *= factor;
                _staticSyncs[r] *= factor;
                _staticExposure[r] *= factor;
            }
        }
    }

    /// <summary>
    /// Updates which regions fall back at <paramref name="price"/> and returns a copy for the decision state (index
    /// <c>class · 16 + model grid index</c>). A region with fewer than <paramref name="minEvidence"/> (faded) outcomes keeps its state.
    /// A whole class falls back when what was applied there is worse than the static policy on both axes at once
    /// (more syncs and more exposure: the price moving to meet the budget cannot excuse that), and returns when the
    /// model's own choices on the same connections no longer are.
    /// </summary>
    public bool[] Update(double price, double minEvidence)
    {
        for (int c = 0; c < 256; c++)
        {
            if (_classN[c] < minEvidence)
            {
                continue;
            }

            if (!_classFallback[c])
            {
                if (_appliedSyncs[c] > _classStaticSyncs[c] * (1 + EnterMargin) && _appliedExposure[c] > _classStaticExposure[c] * (1 + EnterMargin))
                {
                    _classFallback[c] = true;
                }
            }
            else if (!(_classModelSyncs[c] > _classStaticSyncs[c] && _classModelExposure[c] > _classStaticExposure[c]))
            {
                _classFallback[c] = false;
                _appliedSyncs[c] = _classStaticSyncs[c]; // what was applied meanwhile was the static policy
                _appliedExposure[c] = _classStaticExposure[c];
            }
        }

        for (int r = 0; r < _n.Length; r++)
        {
            if (_n[r] < minEvidence)
            {
                continue;
            }

            double model = (price * _modelSyncs[r]) + _modelExposure[r];
            double baseline = (price * _staticSyncs[r]) + _staticExposure[r];
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
        Array.Clear(_n);
        Array.Clear(_modelSyncs);
        Array.Clear(_modelExposure);
        Array.Clear(_staticSyncs);
        Array.Clear(_staticExposure);
        Array.Clear(_fallback);
        Array.Clear(_classFallback);
        foreach (var a in new[] { _classN, _appliedSyncs, _appliedExposure, _classModelSyncs, _classModelExposure, _classStaticSyncs, _classStaticExposure })
        {
            Array.Clear(a);
        }
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
