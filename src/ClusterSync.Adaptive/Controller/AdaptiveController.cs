using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using ClusterSync.Connections;
using ClusterSync.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// The adaptive policy gate. Per new connection the model (or, in cold start, the class's online lifetime
/// distribution) picks the delay on the calibration grid that minimizes <c>price · P(synced) + E[exposure]</c> — the
/// same rule <c>clustersync simulate</c> evaluates: 0 = sync now, ∞ = never; held connections are revised at their
/// checkpoint with what was learned since. Outcomes stream back through an Rx pipeline (buffer by time or count, off
/// the data-plane thread) that keeps per-class lifetime quantiles, per-class predicted-vs-observed statistics (drift,
/// with a retraining hint in the log) and the realized loss Σ exposure / Σ lifetime, and moves the price so that the
/// realized loss tracks the budget. Without a model each class's static policy is the floor until the class has
/// enough outcomes. See README.md in this folder.
/// </summary>
public sealed partial class AdaptiveController : ISyncDecider, IConnectionOutcomeSink, IDisposable
{
    private const int CalibrationBins = 10;
    private const double FadePerBatch = 0.97;
    private const double MinPrice = 1e-3;
    private const double MaxPrice = 1e6;

    /// <summary>The youngest age (seconds) the price's step schedule assumes: bounds the first steps.</summary>
    private const double MinAgeSeconds = 300;

    /// <summary>The delays a decision chooses among (seconds; the last is never): the model's calibration grid.</summary>
    private static readonly double[] s_grid = [.. Model.LifetimeModel.DelayGrid];

    /// <summary>The same grid in milliseconds as a predictor returns them (−1: never).</summary>
    private static readonly int[] s_gridMs = s_grid.Select(d => double.IsPositiveInfinity(d) ? -1 : (int)Math.Round(d * 1000)).ToArray();

    private readonly AdaptiveOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ClassInfo[] _classes;
    private readonly Subject<ConnectionOutcome> _outcomes = new();
    private readonly IDisposable _pipeline;
    private readonly object _feedbackLock = new();

    // Feedback state (under _feedbackLock).
    private readonly LifetimeHistogram[] _histograms;
    private readonly LifetimeHistogram[] _sinceStartLifetimes;
    private readonly double[][] _calHits;
    private readonly double[][] _calCounts;
    private readonly double[] _driftPredicted;
    private readonly double[] _driftObserved;
    private readonly double[] _driftCount;
    private readonly long[] _lastDriftHintMs;
    private double _realized = double.NaN;
    private double _realizedSinceStart = double.NaN;
    private double _neverSyncShare = double.NaN;
    private double _price;
    private readonly BaselineGuard _guard;

    // The budget is above the loss the static policy gives (since start, live connections included): adaptive must
    // then win on messages; below it, on exposure. Read by the since-start account when it holds a class.
    private bool _budgetAllowsMoreExposure = true;
    private double _liveExposureExcess;
    private long _liveCount;

    // Per-service lifetimes learned on this site since start (protocol × low port, hashed), faded over the guard window.
    private const int ServiceBuckets = 8192;

    /// <summary>Outcomes a service needs before its lifetimes are blended with the model's prior.</summary>
    private const double MinBlendSamples = 5;

    /// <summary>Per blended service: its weight, then P(L &gt; d) and E[min(L, d)] on the grid.</summary>
    private static readonly int SlotWidth = 1 + (2 * Model.LifetimeModel.DelayGrid.Count);
    private readonly LifetimeHistogram?[] _services = new LifetimeHistogram?[ServiceBuckets];
    private readonly List<int> _activeServices = [];
    private double _serviceFade = 1;
    private long _serviceStepMs = long.MinValue;
    private int[]? _serviceDelays;
    private float[]? _serviceShare;
    private int[]? _serviceSlots;
    private double[] _servicePrior = [];

    // Per service deciding on its own lifetimes: 1 + its slot in _serviceOwnDist (P(L > d), then E[min(L, d)] on the
    // grid), so a held class can ask the service's rule at a price other than the price of the moment.
    private int[]? _serviceOwnSlots;
    private double[] _serviceOwnDist = [];

    // Per service (faded with the service histograms): what the model's own choices and the service's own rule would
    // have cost on the same ended connections — the evidence whether the service's lifetimes may overrule the model.
    private const double ServiceEnterMargin = 0.05;
    private readonly double[] _evidenceN = new double[ServiceBuckets];
    private readonly double[] _evidenceModelSyncs = new double[ServiceBuckets];
    private readonly double[] _evidenceModelExposure = new double[ServiceBuckets];
    private readonly double[] _evidenceOwnSyncs = new double[ServiceBuckets];
    private readonly double[] _evidenceOwnExposure = new double[ServiceBuckets];
    private readonly bool[] _modelKeepsService = new bool[ServiceBuckets];
    private int[]? _serviceCandidateMs;
    private int _servicesKeptByModel;
    private long _lastStepMs = long.MinValue;
    private long _firstStepMs = long.MinValue;
    private long _budgetCrossings;
    private long _lastCrossingMs = long.MinValue / 2;
    private int _lastErrorSign;
    private double _lastExposure;
    private double _lastLifetime;
    private double _windowExposure;
    private double _windowCounterfactual;
    private double _windowLifetime;
    private double _windowOutcomes;
    private double _windowPriced;
    private double _windowDecisions;
    private long _lastPriced;
    private long _lastUnpriced;
    private double _activeSeconds;
    private double _lastWeight = 1;

    // Connection-seconds since start, live connections included: written by decisions (data-plane thread) and the
    // feedback loop, under its own short lock (uncontended on the decision path but for one feedback sample a batch).
    private readonly ExposureLedger _ledger = new(Model.LifetimeModel.DelayGrid);
    private readonly object _ledgerLock = new();

    // Read by the data-plane thread: one reference each, swapped whole.
    private volatile DecisionState _state;
    private volatile LoadedModel? _model;

    // Counters (one writing thread each).
    private long _now;
    private long _delayed;
    private long _never;
    private long _static;
    private long _neverSkip;
    private long _guarded;
    private long _heldDecisions;
    private long _revisedNow;
    private long _revisedHeld;
    private long _observed;
    private long _driftHints;
    private long _reloads;
    private long _reloadsRefused;
    private string? _lastReloadError;
    private int _disposed;

    public AdaptiveController(AdaptiveOptions options, IReadOnlyList<ServiceClassDefinition> classes, ILifetimePredictor? predictor = null,
        TimeProvider? time = null, ILogger? logger = null, IScheduler? bufferScheduler = null, IScheduler? feedbackScheduler = null)
    {
        var errors = options.Validate("adaptive").ToList();
        var names = classes.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var neverSkip = options.EffectiveNeverSkip(names);
        for (int i = 0; i < neverSkip.Count; i++)
        {
            if (!string.IsNullOrWhiteSpace(neverSkip[i]) && !names.Contains(neverSkip[i]))
            {
                errors.Add($"adaptive.neverSkip[{i}]: '{neverSkip[i]}' is not one of the configured classes ({string.Join(", ", names)})");
            }
        }

        if (errors.Count > 0)
        {
            throw ConfigurationErrors.All(errors);
        }

        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _classes = new ClassInfo[256];
        for (int i = 0; i < 256; i++)
        {
            var def = i < classes.Count ? classes[i] : null;
            double checkpoint = def?.Policy.Kind == SyncPolicyKind.Delayed ? def.Policy.Delay.TotalSeconds : options.Checkpoint.TotalSeconds;
            bool skip = def is not null && neverSkip.Contains(def.Name);
            bool operatorNever = def?.Policy.Kind == SyncPolicyKind.None;
            _classes[i] = new ClassInfo(def?.Name ?? "?", skip, checkpoint, (int)Math.Round(checkpoint * 1000), operatorNever, !skip && !operatorNever);
        }

        ClassCount = classes.Count;
        _histograms = Enumerable.Range(0, 256).Select(_ => new LifetimeHistogram()).ToArray();
        _sinceStartLifetimes = Enumerable.Range(0, 256).Select(_ => new LifetimeHistogram()).ToArray();
        _calHits = Enumerable.Range(0, 256).Select(_ => new double[CalibrationBins]).ToArray();
        _calCounts = Enumerable.Range(0, 256).Select(_ => new double[CalibrationBins]).ToArray();
        _driftPredicted = new double[256];
        _driftObserved = new double[256];
        _driftCount = new double[256];
        _lastDriftHintMs = new long[256];
        _price = options.InitialPrice;
        _guard = new BaselineGuard(classes.Count);
        _state = BuildState();
        if (predictor is not null)
        {
            _model = new LoadedModel(predictor, null, _time.GetUtcNow());
        }

        // The feedback loop: the engine's thread only appends to the current buffer; a closed buffer is handled on
        // the task pool, never under the engine's lock.
        _pipeline = _outcomes
            .Buffer(options.FeedbackInterval, options.FeedbackBatch, bufferScheduler ?? DefaultScheduler.Instance)
            .Where(b => b.Count > 0)
            .ObserveOn(feedbackScheduler ?? TaskPoolScheduler.Default)
            .Subscribe(SafeProcess);
    }

    public int ClassCount { get; }

    public AdaptiveOptions Options => _options;

    /// <summary>The price in use: exposure seconds one synchronized connection is worth. Lower syncs earlier.</summary>
    public double Price => _state.Price;

    /// <summary>
    /// The realized loss the price follows: exposure-seconds / connection-seconds on the classes the policy acts on, live
    /// connections included, over an exponential window of <see cref="AdaptiveOptions.LossWindow"/>; NaN before the first batch.
    /// </summary>
    public double RealizedLoss
    {
        get
        {
            lock (_feedbackLock)
            {
                return _realized;
            }
        }
    }

    public string? ModelName => _model?.Predictor.Name;

    /// <summary>The model in use (null: cold start).</summary>
    public ILifetimePredictor? Predictor => _model?.Predictor;

    /// <summary>Raised after each feedback batch (on the feedback thread).</summary>
    public event Action? BatchProcessed;

    // ------------------------------------------------------------------ decisions (data-plane thread)

    public SyncDecision Decide(in ConnectionKey key, in ConnectionEntry entry, byte serviceClass, SyncPolicy classPolicy)
    {
        var cls = _classes[serviceClass];
        if (cls.NeverSkip)
        {
            _neverSkip++;
            return SyncDecision.Now();
        }

        if (classPolicy.Kind == SyncPolicyKind.None)
        {
            _static++;
            if (cls.OperatorNever)
            {
                lock (_ledgerLock)
                {
                    _ledger.StartedNeverSyncClass(entry.CreatedMs);
                }
            }

            return SyncDecision.Never(); // selective sync configured by the operator stays
        }

        var state = _state;
        SyncDecision decision;
        int ms;
        float p;
        if (state.ClassHoldMs is { } hold && hold[serviceClass] != int.MinValue)
        {
            // The since-start account: the class is behind the static policy on both axes (or on the way there). The model
            // decides at the price at which its choices on the held class's ended connections beat static on both axes
            // (that pays the deficit back on both); without one, its static policy, tilted toward the axis it secures,
            // decides until that is paid back and the model pays again.
            _guarded++;
            _heldDecisions++;
            double heldPrice = state.ClassHoldPrice is { } prices ? prices[serviceClass] : double.NaN;
            if (!double.IsNaN(heldPrice) && (ms = ChooseMs(state, _model, key, entry.CreatedMs, cls.CheckpointSeconds, heldPrice, out p)) != int.MinValue)
            {
                decision = ms == 0 ? SyncDecision.Now(p) : ms < 0 ? SyncDecision.Never(p) : SyncDecision.After(ms, p);
            }
            else
            {
                decision = hold[serviceClass] == 0 ? SyncDecision.Now() : SyncDecision.After(hold[serviceClass]);
            }
        }
        else if ((ms = ChooseMs(state, _model, key, entry.CreatedMs, cls.CheckpointSeconds, state.Price, out p)) != int.MinValue)
        {
            if (state.Fallback is { } fallback && fallback[(serviceClass * BaselineGuard.RegionsPerClass) + GridIndexOfMs(ms)])
            {
                // The guard: the model does worse than the static policy on connections it treats like this one.
                _guarded++;
                decision = SyncDecision.After(cls.CheckpointMs);
            }
            else
            {
                decision = Count(ms, p);
            }
        }
        else
        {
            // Cold start: the class's own online lifetime distribution; its static policy until it has enough outcomes.
            int classMs = state.ClassDelayMs[serviceClass];
            if (classMs == int.MinValue)
            {
                _static++;
                decision = SyncDecision.From(classPolicy);
            }
            else
            {
                decision = Count(classMs, state.ClassLongShare[serviceClass]);
            }
        }

        if (cls.Actable)
        {
            int registered = decision.Kind switch { SyncPolicyKind.Full => 0, SyncPolicyKind.None => -1, _ => decision.DelayMs };
            lock (_ledgerLock)
            {
                _ledger.Started(entry.CreatedMs, registered);
            }
        }

        return decision;
    }

    /// <summary>The service bucket of a connection: protocol × its lower port (the service port, whichever side opened), hashed.</summary>
    private static int ServiceBucket(in ConnectionKey key)
    {
        uint low = Math.Min(key.SourcePort, key.DestinationPort);
        return (int)((((uint)key.Protocol * 0x9E3779B1u) ^ (low * 0x85EBCA6Bu)) >> 19) & (ServiceBuckets - 1);
    }

    /// <summary>
    /// The delay (ms; 0 now, −1 never) for a connection of an acted-on class, and its P(lives past the checkpoint): the
    /// service's own lifetimes once it has <see cref="AdaptiveOptions.ServiceMinSamples"/> outcomes; while it has fewer,
    /// its lifetimes blended with the model's distribution for the connection as a prior worth
    /// <see cref="AdaptiveOptions.ServicePriorWeight"/> outcomes; the model alone for a service not seen yet.
    /// int.MinValue: neither a model nor a service's lifetimes (cold start). The decision and the guard both ask this.
    /// </summary>
    private static int ChooseMs(DecisionState state, LoadedModel? model, in ConnectionKey key, long createdMs, double checkpointSeconds, double price, out float p)
    {
        int b = ServiceBucket(key);
        if (state.ServiceDelayMs is { } sd && sd[b] != int.MinValue)
        {
            // What this site has taught the node about this service since start outweighs the model's prior (asked at
            // another price than the moment's — a held class at its dominating price — its rule at that price).
            p = state.ServiceLongShare![b];
            return price != state.Price && OwnDistribution(state, b) is { Length: > 0 } own ? s_gridMs[Argmin(own, price, state.ServiceMaxDelay)] : sd[b];
        }

        if (model is null)
        {
            p = float.NaN;
            return int.MinValue;
        }

        int slot = state.ServiceSlot is { } slots ? slots[b] - 1 : -1;
        if (slot < 0)
        {
            return model.Predictor.ChooseDelayMs(key, createdMs, price, checkpointSeconds, out p);
        }

        Span<double> survival = stackalloc double[s_grid.Length];
        Span<double> exposure = stackalloc double[s_grid.Length];
        if (!model.Predictor.TryDistribution(key, createdMs, survival, exposure))
        {
            return model.Predictor.ChooseDelayMs(key, createdMs, price, checkpointSeconds, out p);
        }

        var site = state.ServicePrior.AsSpan(slot * SlotWidth, SlotWidth);
        double w = site[0];
        int best = 0;
        double bestCost = double.PositiveInfinity;
        for (int g = 0; g < s_grid.Length && s_grid[g] <= state.ServiceMaxDelay; g++)
        {
            double cost = (price * (((1 - w) * survival[g]) + (w * site[1 + g]))) + ((1 - w) * exposure[g]) + (w * site[1 + s_grid.Length + g]);
            if (cost < bestCost)
            {
                bestCost = cost;
                best = g;
            }
        }

        int c = LifetimeModelPredictor.GridIndex(checkpointSeconds);
        p = (float)(((1 - w) * survival[c]) + (w * site[1 + c]));
        return s_gridMs[best];
    }

    /// <summary>
    /// What <see cref="ChooseMs"/> would choose (as a grid delay, seconds) at each of the since-start account's candidate
    /// prices (<see cref="BaselineGuard.CandidatePrice"/>) — one distribution, one argmin per price. False: no model (cold start).
    /// </summary>
    private static bool CandidateDelays(DecisionState state, LoadedModel? model, in ConnectionKey key, long createdMs, double checkpointSeconds, Span<double> delays)
    {
        int b = ServiceBucket(key);
        if (state.ServiceDelayMs is { } sd && sd[b] != int.MinValue)
        {
            // The service's own lifetimes decide: its rule at each candidate price.
            var own = OwnDistribution(state, b);
            for (int k = 0; k < delays.Length; k++)
            {
                delays[k] = own.Length > 0 ? s_grid[Argmin(own, BaselineGuard.CandidatePrice(k), state.ServiceMaxDelay)] : s_grid[GridIndexOfMs(sd[b])];
            }

            return true;
        }

        if (model is null)
        {
            return false;
        }

        Span<double> survival = stackalloc double[s_grid.Length];
        Span<double> exposure = stackalloc double[s_grid.Length];
        if (!model.Predictor.TryDistribution(key, createdMs, survival, exposure))
        {
            for (int k = 0; k < delays.Length; k++)
            {
                int ms = model.Predictor.ChooseDelayMs(key, createdMs, BaselineGuard.CandidatePrice(k), checkpointSeconds, out _);
                delays[k] = s_grid[GridIndexOfMs(ms)];
            }

            return true;
        }

        int slot = state.ServiceSlot is { } slots ? slots[b] - 1 : -1;
        var site = slot < 0 ? default : state.ServicePrior.AsSpan(slot * SlotWidth, SlotWidth);
        double w = slot < 0 ? 0 : site[0];
        double maxDelay = slot < 0 ? double.PositiveInfinity : state.ServiceMaxDelay;
        for (int g = 0; g < s_grid.Length && w > 0; g++)
        {
            // Blended with the service's few outcomes, as ChooseMs blends them.
            survival[g] = ((1 - w) * survival[g]) + (w * site[1 + g]);
            exposure[g] = ((1 - w) * exposure[g]) + (w * site[1 + s_grid.Length + g]);
        }

        for (int k = 0; k < delays.Length; k++)
        {
            double price = BaselineGuard.CandidatePrice(k);
            int best = 0;
            double bestCost = double.PositiveInfinity;
            for (int g = 0; g < s_grid.Length && s_grid[g] <= maxDelay; g++)
            {
                double cost = (price * survival[g]) + exposure[g];
                if (cost < bestCost)
                {
                    bestCost = cost;
                    best = g;
                }
            }

            delays[k] = s_grid[best];
        }

        return true;
    }

    /// <summary>A service's own lifetimes on the grid (P(L &gt; d), then E[min(L, d)]); empty: none kept.</summary>
    private static ReadOnlySpan<double> OwnDistribution(DecisionState state, int bucket)
    {
        int slot = state.ServiceOwnSlot is { } slots ? slots[bucket] - 1 : -1;
        return slot < 0 ? default : state.ServiceOwnDist.AsSpan(slot * 2 * s_grid.Length, 2 * s_grid.Length);
    }

    /// <summary>The grid index minimizing price · P(L &gt; d) + E[min(L, d)] over <paramref name="dist"/> (as <see cref="OwnDistribution"/>), delays up to <paramref name="maxDelay"/>.</summary>
    private static int Argmin(ReadOnlySpan<double> dist, double price, double maxDelay)
    {
        int n = s_grid.Length;
        int best = 0;
        double bestCost = double.PositiveInfinity;
        for (int g = 0; g < n && s_grid[g] <= maxDelay; g++)
        {
            double cost = (price * dist[g]) + dist[n + g];
            if (cost < bestCost)
            {
                bestCost = cost;
                best = g;
            }
        }

        return best;
    }

    /// <summary>The grid index of a predictor's delay (milliseconds, −1 never); the nearest one when off the grid.</summary>
    private static int GridIndexOfMs(int ms)
    {
        var grid = s_gridMs;
        for (int g = 0; g < grid.Length; g++)
        {
            if (grid[g] == ms)
            {
                return g;
            }
        }

        if (ms < 0)
        {
            return grid.Length - 1;
        }

        int best = 0;
        for (int g = 1; g < grid.Length - 1; g++)
        {
            if (Math.Abs(grid[g] - ms) < Math.Abs(grid[best] - ms))
            {
                best = g;
            }
        }

        return best;
    }

    private SyncDecision Count(int delayMs, float score)
    {
        if (delayMs == 0)
        {
            _now++;
            return SyncDecision.Now(score);
        }

        if (delayMs < 0)
        {
            _never++;
            return SyncDecision.Never(score);
        }

        _delayed++;
        return SyncDecision.After(delayMs, score);
    }

    public SyncDecision Revise(in ConnectionKey key, in ConnectionEntry entry, in ConnectionCounters counters, bool hasCounters, byte serviceClass, long ageMs)
    {
        var cls = _classes[serviceClass];
        // What was learned since the start: a connection already closing, or a UDP flow that never saw a reply, is
        // likely to end soon — hold it once more (half a checkpoint) rather than pay for its announcement and destroy.
        bool closing = entry.State is ProtocolState.TcpFinWait or ProtocolState.TcpCloseWait or ProtocolState.TcpLastAck
            or ProtocolState.TcpTimeWait or ProtocolState.TcpClose;
        bool silentUdp = entry.State == ProtocolState.UdpUnreplied || (hasCounters && counters.ReplyPackets == 0 && key.Protocol == 17);
        if (!cls.NeverSkip && (closing || silentUdp) && ageMs < 2 * cls.CheckpointMs)
        {
            _revisedHeld++;
            return SyncDecision.After(Math.Max(50, cls.CheckpointMs / 2));
        }

        _revisedNow++;
        return SyncDecision.Now();
    }

    // ------------------------------------------------------------------ outcomes (engine thread → Rx)

    public void OnEnded(in ConnectionOutcome outcome) => _outcomes.OnNext(outcome);

    private void SafeProcess(IList<ConnectionOutcome> batch)
    {
        try
        {
            Process(batch);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.FeedbackFailed(_logger, ex);
        }

        BatchProcessed?.Invoke();
    }

    /// <summary>One feedback step over a batch of outcomes (the Rx subscriber; public for tests that drive it directly).</summary>
    public void Process(IList<ConnectionOutcome> batch)
    {
        lock (_feedbackLock)
        {
            long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var model = _model;
            double counterfactual = 0;
            Span<double> candidateDelays = stackalloc double[BaselineGuard.CandidatePrices];
            foreach (var o in batch)
            {
                var c = o.ServiceClass;
                var cls = _classes[c];
                double life = o.LifetimeMs / 1000.0;
                _histograms[c].Add(life);
                lock (_ledgerLock)
                {
                    if (cls.Actable)
                    {
                        _ledger.Ended(o);
                    }
                    else if (cls.OperatorNever)
                    {
                        _ledger.EndedNeverSyncClass(o);
                    }
                }

                if (cls.Actable)
                {
                    _sinceStartLifetimes[c].Add(life);

                    // What the static policy, and the model's own choice, would have done with this connection.
                    int g = -1;
                    double modelDelay = double.PositiveInfinity;
                    int chosenMs = ChooseMs(_state, model, o.Key, o.CreatedMs, cls.CheckpointSeconds, _state.Price, out _);
                    if (chosenMs != int.MinValue)
                    {
                        g = GridIndexOfMs(chosenMs);
                        modelDelay = s_grid[g];
                    }

                    if (_options.ServiceStats)
                    {
                        int b = ServiceBucket(o.Key);
                        if (model is not null && _serviceCandidateMs is { } candidates && candidates[b] != int.MinValue)
                        {
                            // The evidence: the service's own rule (as of the last refresh, this outcome not in it) and
                            // the model's own choice, both judged on this connection's true lifetime.
                            double own = s_grid[GridIndexOfMs(candidates[b])];
                            double mine = s_grid[GridIndexOfMs(model.Predictor.ChooseDelayMs(o.Key, o.CreatedMs, _price, cls.CheckpointSeconds, out _))];
                            _evidenceN[b]++;
                            _evidenceOwnSyncs[b] += life > own ? 1 : 0;
                            _evidenceOwnExposure[b] += Math.Min(life, own);
                            _evidenceModelSyncs[b] += life > mine ? 1 : 0;
                            _evidenceModelExposure[b] += Math.Min(life, mine);
                        }

                        if (_services[b] is not { } sh)
                        {
                            sh = _services[b] = new LifetimeHistogram();
                            _activeServices.Add(b);
                        }

                        sh.Add(life);
                    }

                    if (g >= 0 && _options.GuardSinceStart && _guard.Held(c))
                    {
                        // Held: what the model's own choice (at the price of the moment) would have exposed instead of
                        // what the hold applied — the price keeps learning from the model's choices, not the hold's.
                        counterfactual += Math.Min(life, modelDelay) - (o.ExposureMs / 1000.0);

                        // And at the candidate prices: where the model's choices beat static on both axes, the
                        // held class is decided by the model at that price (GuardHold).
                        if (CandidateDelays(_state, model, o.Key, o.CreatedMs, cls.CheckpointSeconds, candidateDelays))
                        {
                            _guard.ObserveCandidates(c, life, cls.CheckpointSeconds, candidateDelays);
                        }
                    }

                    _guard.Observe(c, life, o.Synced, o.ExposureMs / 1000.0, cls.CheckpointSeconds, g, modelDelay, nowMs);
                }

                if (!float.IsNaN(o.Score) && model is not null)
                {
                    double y = life > _classes[c].CheckpointSeconds ? 1 : 0;
                    int bin = Math.Clamp((int)(o.Score * CalibrationBins), 0, CalibrationBins - 1);
                    _calHits[c][bin] += y;
                    _calCounts[c][bin]++;
                    _driftPredicted[c] += o.Score;
                    _driftObserved[c] += y;
                    _driftCount[c]++;
                }
            }

            _observed += batch.Count;

            // Realized loss: the share of connection-seconds the policy can act on that were not replicated, live
            // connections included; the operator's never-sync classes apart.
            double exposureSeconds, lifetimeSeconds, neverSyncSeconds;
            lock (_ledgerLock)
            {
                (exposureSeconds, lifetimeSeconds, neverSyncSeconds) = _ledger.Totals(nowMs);
            }

            double dt = _lastStepMs == long.MinValue ? 0 : Math.Max(0, nowMs - _lastStepMs) / 1000.0;
            if (_firstStepMs == long.MinValue)
            {
                _firstStepMs = nowMs;
            }

            // The realized loss the price follows: an exponential window of LossWindow (minutes: the price's own effect
            // shows at once, so the loop stays first order). Its integral moves the price with a step of gain / age
            // (a stochastic-approximation schedule), where the age only counts while the realized loss keeps crossing
            // the budget (Kesten's rule): near its price the controller settles on a near-constant price — the
            // Lagrangian frontier wants one price for the whole day, not one per hour of the mix — while an error that
            // keeps one sign (a wrong start, a new site) keeps the step it had instead of stalling.
            double age = Math.Max(MinAgeSeconds, Math.Min((nowMs - _firstStepMs) / 1000.0, MinAgeSeconds * (1 + _budgetCrossings)));
            double memory = _options.LossWindow.TotalSeconds;
            double keep = Math.Exp(-dt / memory);
            _windowExposure = (keep * _windowExposure) + (exposureSeconds - _lastExposure);
            _windowCounterfactual = (keep * _windowCounterfactual) + counterfactual;
            _windowLifetime = (keep * _windowLifetime) + (lifetimeSeconds - _lastLifetime);
            _windowOutcomes = (keep * _windowOutcomes) + batch.Count;
            _lastExposure = exposureSeconds;
            _lastLifetime = lifetimeSeconds;
            _lastStepMs = nowMs;
            if (_windowLifetime > 0)
            {
                _realized = Math.Max(0, _windowExposure / _windowLifetime);
            }
            else if (double.IsNaN(_realized))
            {
                _realized = 0;
            }

            _realizedSinceStart = lifetimeSeconds > 0 ? exposureSeconds / lifetimeSeconds : double.NaN;
            if (lifetimeSeconds > 0)
            {
                // The static policy's loss: its exposure on the ended connections, plus at most its delay for each
                // live one, over the same connection-seconds as the realized loss.
                double staticExposure = 0;
                for (int c = 0; c < ClassCount; c++)
                {
                    if (_classes[c].Actable)
                    {
                        staticExposure += _guard.SinceStart(c).StaticExposureSeconds;
                    }
                }

                long live;
                double endedExposure;
                lock (_ledgerLock)
                {
                    live = _ledger.Live;
                    endedExposure = _ledger.EndedExposureSeconds;
                }

                // Static would have exposed a live connection min(age, its delay): at most the delay.
                double liveStatic = live * _options.Checkpoint.TotalSeconds;
                _liveExposureExcess = Math.Max(0, exposureSeconds - endedExposure - liveStatic);
                _liveCount = live;
                _budgetAllowsMoreExposure = _options.LossBudget >= (staticExposure + liveStatic) / lifetimeSeconds;
            }
            _neverSyncShare = lifetimeSeconds + neverSyncSeconds > 0 ? neverSyncSeconds / (lifetimeSeconds + neverSyncSeconds) : double.NaN;

            // Over budget: lower the price (sync earlier); under: raise it (fewer messages).
            double previous = _price;
            double weight = EvidenceWeight(dt, memory, keep, lifetimeSeconds);
            // While a class is held by the since-start account the price follows the loss the model's own choices would
            // have realized (the held connections' exposure replaced by theirs): the hold ends when the model pays at
            // the price the budget needs, not at the price the hold began with. What is applied meanwhile stays the hold's.
            double followed = _windowLifetime > 0 && _windowCounterfactual != 0
                ? Math.Max(0, (_windowExposure + _windowCounterfactual) / _windowLifetime)
                : _realized;
            double error = Math.Clamp((followed / _options.LossBudget) - 1, -1, _options.ErrorWeighting ? _options.MaxOverError : 1);
            int sign = Math.Sign(error);
            if (sign != 0 && sign != _lastErrorSign)
            {
                // A crossing counts once per loss window (the window's noise around the budget is not evidence).
                if (_lastErrorSign != 0 && nowMs - _lastCrossingMs >= _options.LossWindow.TotalMilliseconds)
                {
                    _budgetCrossings++;
                    _lastCrossingMs = nowMs;
                }

                _lastErrorSign = sign;
            }

            double step = _options.Gain * error * weight * Math.Min(dt, age) / age;
            _price = Math.Clamp(_price * Math.Exp(-step), MinPrice, MaxPrice);
            Log.PriceMoved(_logger, _realized, _options.LossBudget, previous, _price);

            double fade = dt > 0 ? Math.Exp(-dt / _options.GuardWindow.TotalSeconds) : 1;
            double slowWindow = _options.GuardSlowWindow.TotalSeconds;
            _guard.Fade(fade, dt > 0 && slowWindow > 0 ? Math.Exp(-dt / slowWindow) : 1);
            // The per-service histograms fade and give their delays every 10 s (not every batch: thousands of them).
            _serviceFade *= _options.ServiceWindow > TimeSpan.Zero
                ? (dt > 0 ? Math.Exp(-dt / _options.ServiceWindow.TotalSeconds) : 1)
                : fade;
            bool serviceStep = _serviceStepMs == long.MinValue || nowMs - _serviceStepMs >= 10_000;
            if (serviceStep)
            {
                _serviceStepMs = nowMs;
                if (_serviceFade < 1)
                {
                    foreach (int b in _activeServices)
                    {
                        _services[b]!.Decay(_serviceFade);
                        _evidenceN[b] *= _serviceFade;
                        _evidenceOwnSyncs[b] *= _serviceFade;
                        _evidenceOwnExposure[b] *= _serviceFade;
                        _evidenceModelSyncs[b] *= _serviceFade;
                        _evidenceModelExposure[b] *= _serviceFade;
                    }
                }

                _serviceFade = 1;
                RefreshServiceDelays();
            }

            CheckDrift();
            _state = BuildState();

            for (int c = 0; c < 256; c++)
            {
                _histograms[c].Decay(FadePerBatch);
                for (int b = 0; b < CalibrationBins; b++)
                {
                    _calHits[c][b] *= FadePerBatch;
                    _calCounts[c][b] *= FadePerBatch;
                }

                _driftPredicted[c] *= FadePerBatch;
                _driftObserved[c] *= FadePerBatch;
                _driftCount[c] *= FadePerBatch;
            }
        }
    }

    private void CheckDrift()
    {
        long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (int c = 0; c < ClassCount; c++)
        {
            double n = _driftCount[c];
            if (n < 100)
            {
                continue;
            }

            double predicted = _driftPredicted[c] / n;
            double observed = _driftObserved[c] / n;
            if (Math.Abs(predicted - observed) > _options.DriftThreshold && nowMs - _lastDriftHintMs[c] >= 60_000)
            {
                _lastDriftHintMs[c] = nowMs;
                _driftHints++;
                Log.DriftHint(_logger, _classes[c].Name, _classes[c].CheckpointSeconds, predicted, observed, n, _model?.Predictor.Name ?? "none");
            }
        }
    }

    private DecisionState BuildState()
    {
        var share = new float[256];
        var delays = new int[256];
        for (int c = 0; c < 256; c++)
        {
            var h = _histograms[c];
            if (h.Count < _options.ColdStartMinSamples)
            {
                share[c] = float.NaN;
                delays[c] = int.MinValue; // the static policy
                continue;
            }

            share[c] = (float)h.FractionAbove(_classes[c].CheckpointSeconds);
            delays[c] = BestDelayMs(h, _price);
        }

        var hold = GuardHold(out var holdPrice);
        return new DecisionState(_price, share, delays, GuardFallback(), _serviceDelays, _serviceShare, _serviceSlots, _servicePrior,
            _options.ServiceMaxDelay.TotalSeconds, hold, holdPrice, _serviceOwnSlots, _serviceOwnDist);
    }

    /// <summary>
    /// The since-start account's holds as decision delays per class (ms; int.MinValue: not held; null: none held): the
    /// class's static delay tilted longer when the class must win on messages, shorter when on exposure (<see cref="TiltedMs"/>).
    /// </summary>
    private int[]? GuardHold(out double[]? holdPrice)
    {
        holdPrice = null;
        if (!_options.Guard || !_options.GuardSinceStart || _model is null || !_guard.UpdateHeld(_budgetAllowsMoreExposure, _options.GuardMinEvidence, _liveExposureExcess))
        {
            return null;
        }

        var hold = new int[256];
        Array.Fill(hold, int.MinValue);
        for (int c = 0; c < ClassCount; c++)
        {
            if (_guard.Held(c) && _classes[c].Actable)
            {
                hold[c] = TiltedMs(c, _guard.HeldForMessages(c));
                int k = _guard.DominatingCandidate(c);
                if (k >= 0)
                {
                    if (holdPrice is null)
                    {
                        holdPrice = new double[256];
                        Array.Fill(holdPrice, double.NaN);
                    }

                    holdPrice[c] = BaselineGuard.CandidatePrice(k);
                }
            }
        }

        return hold;
    }

    /// <summary>
    /// A held class's delay, from the class's lifetimes since start (site data, not the model; not the price, which the
    /// model's mistakes have moved). <paramref name="longer"/> (fewer messages: each connection synced no more often than
    /// static syncs it): from the next grid delay above the static one, longer while the next one's loss as a static
    /// policy (over the connection-seconds so far, live ones included) stays within the budget — or within the loss
    /// already realized, when the model has spent more — or while the delay's saving (the share of connections living
    /// between the static delay and it) would not pay the deficit back within as many connections as the class has seen; up
    /// to <see cref="AdaptiveOptions.ServiceMaxDelay"/>. Otherwise (less exposure: none exposed longer than static
    /// exposes it): from the grid delay just below the static one, shorter while its loss is above the budget or its
    /// saving (E[min(L, static)] − E[min(L, d)]) would not pay the deficit back in that horizon; 0.5 s at the least.
    /// The deficit counts the lead the hold keeps on that axis (<see cref="BaselineGuard.SecuredMargin"/>): the static
    /// policy itself decides only while the class is ahead there by one standard error.
    /// </summary>
    private int TiltedMs(int cls, bool longer)
    {
        double staticSeconds = _classes[cls].CheckpointSeconds;
        var h = _sinceStartLifetimes[cls];
        var account = _guard.SinceStart(cls);
        double n = Math.Max(1, h.Total);
        double horizon = Math.Max(1, account.Connections);
        // The deficit on that axis; the static policy itself decides only while the class is ahead there by the lead a
        // hold keeps (one standard error: a class held on static's point must not end a hair behind on both). Within
        // that margin the tilt takes its nearest step and goes further only as the budget allows; the deficit alone
        // (not the margin) may push it past the budget, and a class ahead only short of the margin takes no longer step
        // past the budget at all (CTU day 1 at budget 0.01: 1.63 × the budget with it, 1.12 × without the margin).
        double need = longer
            ? (account.AdaptiveMessages - account.StaticMessages) / (double)BaselineGuard.MessagesPerSync
            : account.AdaptiveExposureSeconds + _liveExposureExcess - account.StaticExposureSeconds;
        if (need + _guard.SecuredMargin(cls, longer) <= 0)
        {
            return _classes[cls].CheckpointMs; // ahead on that axis by the margin: the static policy keeps the lead
        }

        double connectionSeconds = Math.Max(_lastLifetime, 1e-9);
        double realized = double.IsNaN(_realizedSinceStart) ? 0 : _realizedSinceStart;
        // The loss a longer tilt may reach: the budget, or the loss already realized when the model has spent more — but
        // only to pay a deficit back: a class ahead, only short of the margin, keeps to the budget.
        double allowance = longer && need > 0 ? Math.Max(_options.LossBudget, realized) : _options.LossBudget;
        double Loss(double d) => h.Total > 0 ? ((n * h.ExpectedMin(d)) + (_liveCount * d)) / connectionSeconds : 0;
        double Saving(double d) => h.Total <= 0 ? 0 : longer
            ? h.FractionAbove(staticSeconds) - h.FractionAbove(d)
            : h.ExpectedMin(staticSeconds) - h.ExpectedMin(d);

        // The candidates toward the target axis, nearest to the static delay first.
        double cap = _options.ServiceMaxDelay.TotalSeconds;
        double pick = double.NaN;
        for (int k = 0; k < s_grid.Length; k++)
        {
            double d = longer ? s_grid[k] : s_grid[s_grid.Length - 1 - k];
            bool candidate = longer ? d > staticSeconds && !double.IsPositiveInfinity(d) : d > 0 && d < staticSeconds;
            if (!candidate)
            {
                continue;
            }

            if (double.IsNaN(pick))
            {
                if (need <= 0 && longer && Loss(d) > allowance)
                {
                    break; // ahead, only short of the margin: not a step past the budget for it
                }

                pick = d; // the nearest step toward the target axis: taken when behind there
                continue;
            }

            bool shortOfTheDebt = Saving(pick) * horizon < need;
            bool go = longer
                ? d <= cap && (Loss(d) <= allowance || shortOfTheDebt)
                : Loss(pick) > allowance || shortOfTheDebt;
            if (!go)
            {
                break;
            }

            pick = d;
        }

        return double.IsNaN(pick) ? _classes[cls].CheckpointMs : (int)Math.Round(pick * 1000);
    }

    private bool[]? GuardFallback()
    {
        bool[]? fallback = null;
        if (_options.Guard && _model is not null)
        {
            fallback = _guard.Update(_price, _options.GuardMinEvidence, _options.GuardSlowWindow > TimeSpan.Zero);
            if (Array.IndexOf(fallback, true) < 0)
            {
                fallback = null;
            }
        }

        return fallback;
    }

    private void RefreshServiceDelays()
    {
        int[]? serviceDelays = null;
        float[]? serviceShare = null;
        int[]? slots = null;
        int[]? ownSlots = null;
        var ownDist = new List<double>();
        int[]? candidates = null;
        int kept = 0;
        var prior = new List<double>();
        bool evidence = _options.ServiceEvidence && _model is not null;
        double maxDelay = _options.ServiceMaxDelay.TotalSeconds;
        if (_options.ServiceStats)
        {
            foreach (int b in _activeServices)
            {
                var h = _services[b]!;
                int own = int.MinValue;
                if (evidence && h.Count >= _options.ServiceMinSamples / 2)
                {
                    // The service's own rule, judged against the model's on the outcomes still to come (from half the
                    // outcomes it needs to decide, so the evidence is there when it could).
                    candidates ??= NewBucketArray();
                    own = candidates[b] = BestDelayMs(h, _price, maxDelay);
                }

                if (h.Count < _options.ServiceMinSamples)
                {
                    if (h.Count >= MinBlendSamples && _model is not null)
                    {
                        // Few outcomes yet: kept for the decision to blend with the model's prior.
                        slots ??= new int[ServiceBuckets];
                        slots[b] = (prior.Count / SlotWidth) + 1;
                        prior.Add(h.Count / (h.Count + _options.ServicePriorWeight));
                        foreach (double d in s_grid)
                        {
                            prior.Add(d == 0 ? 1 : double.IsPositiveInfinity(d) ? 0 : h.FractionAbove(d));
                        }

                        foreach (double d in s_grid)
                        {
                            prior.Add(d == 0 ? 0 : h.ExpectedMin(d));
                        }
                    }

                    continue;
                }

                if (evidence && ModelKeeps(b))
                {
                    // The evidence says the model's own choices cost less for this service: the model decides it.
                    kept++;
                    continue;
                }

                if (serviceDelays is null)
                {
                    serviceDelays = NewBucketArray();
                    serviceShare = new float[ServiceBuckets];
                }

                // Learned from ended connections only, a service's histogram under-weights its longest lives (they have
                // not ended yet): its delay is capped (never-sync stays the model's or the operator's call).
                serviceDelays[b] = own != int.MinValue ? own : BestDelayMs(h, _price, maxDelay);
                ownSlots ??= new int[ServiceBuckets];
                ownSlots[b] = (ownDist.Count / (2 * s_grid.Length)) + 1;
                foreach (double d in s_grid)
                {
                    ownDist.Add(d == 0 ? 1 : double.IsPositiveInfinity(d) ? 0 : h.FractionAbove(d));
                }

                foreach (double d in s_grid)
                {
                    ownDist.Add(d == 0 ? 0 : h.ExpectedMin(d));
                }
                serviceShare![b] = (float)h.FractionAbove(_options.Checkpoint.TotalSeconds);
            }
        }

        _serviceDelays = serviceDelays;
        _serviceShare = serviceShare;
        _serviceSlots = slots;
        _servicePrior = [.. prior];
        _serviceOwnSlots = ownSlots;
        _serviceOwnDist = [.. ownDist];
        _serviceCandidateMs = candidates;
        _servicesKeptByModel = kept;
    }

    /// <summary>
    /// How much the window's error counts (<see cref="AdaptiveOptions.ErrorWeighting"/>, <see cref="AdaptiveOptions.HoldWhileGuarded"/>).
    /// The budget is a ratio of totals over the whole run, so a stretch counts for its connection-seconds: a quiet hour
    /// of a few short connections, unreplicated their whole (short) lives, is "100 % lost" of almost nothing and must
    /// not drag the price down for hours (the window's connection-seconds per second against the run's average, at
    /// most 2). And the price only answers for decisions it made: while the guard (or a cold-start static policy)
    /// decides instead, raising or lowering it changes nothing the window shows, and integrating that error winds the
    /// price up (or down) without bound (the share of the window's decisions the price made).
    /// </summary>
    private double EvidenceWeight(double dt, double memory, double keep, double lifetimeSeconds)
    {
        double weight = 1;
        if (_options.ErrorWeighting)
        {
            _activeSeconds += Math.Min(dt, memory);
            if (_activeSeconds >= 2 * memory && lifetimeSeconds > 0)
            {
                double average = lifetimeSeconds / _activeSeconds;
                weight = Math.Clamp(_windowLifetime / memory / average, 0, _options.MaxErrorWeight);
            }
        }

        if (_options.HoldWhileGuarded)
        {
            // A class held by the since-start account is not: the price follows the model's counterfactual choices for
            // it (Process), which answer the price. (Following the hold's own loss wound the price up — CTU day 1 at
            // budget 0.1 ended at 1.78 × the budget that way; holding the price instead left a good model held all day.)
            long held = _options.GuardSinceStart ? Interlocked.Read(ref _heldDecisions) : 0;
            long priced = Interlocked.Read(ref _now) + Interlocked.Read(ref _delayed) + Interlocked.Read(ref _never) + held;
            long unpriced = Interlocked.Read(ref _guarded) + Interlocked.Read(ref _static) - held;
            _windowPriced = (keep * _windowPriced) + (priced - _lastPriced);
            _windowDecisions = (keep * _windowDecisions) + (priced - _lastPriced) + (unpriced - _lastUnpriced);
            _lastPriced = priced;
            _lastUnpriced = unpriced;
            if (_windowDecisions > 0)
            {
                weight *= Math.Clamp(_windowPriced / _windowDecisions, 0, 1);
            }
        }

        _lastWeight = weight;
        return weight;
    }

    /// <summary>The weight of the last batch's error in the price's step (1 without evidence weighting).</summary>
    public double ErrorWeight
    {
        get
        {
            lock (_feedbackLock)
            {
                return _lastWeight;
            }
        }
    }

    /// <summary>Ended connections in the realized-loss window (faded with it): the evidence the price's error rests on.</summary>
    public double WindowOutcomes
    {
        get
        {
            lock (_feedbackLock)
            {
                return _windowOutcomes;
            }
        }
    }

    private static int[] NewBucketArray()
    {
        var a = new int[ServiceBuckets];
        Array.Fill(a, int.MinValue);
        return a;
    }

    /// <summary>
    /// Whether the model keeps deciding service bucket <paramref name="b"/> although it has the outcomes to decide
    /// itself: its evidence (at least <see cref="AdaptiveOptions.GuardMinEvidence"/> faded outcomes) says the model's
    /// own choices cost less there at the current price (by 5 % to hand the service to the model; back when they do
    /// not). Too little evidence keeps the last verdict (at first: the service decides).
    /// </summary>
    private bool ModelKeeps(int b)
    {
        if (_evidenceN[b] >= _options.GuardMinEvidence)
        {
            double model = (_price * _evidenceModelSyncs[b]) + _evidenceModelExposure[b];
            double own = (_price * _evidenceOwnSyncs[b]) + _evidenceOwnExposure[b];
            _modelKeepsService[b] = _modelKeepsService[b] ? model < own : model < own * (1 - ServiceEnterMargin);
        }

        return _modelKeepsService[b];
    }

    /// <summary>
    /// The since-start account's holds as of the last refresh (for <c>simulate --price-log</c>): how many classes are
    /// held, and for the first held class its decision (the model's candidate price, or NaN when its static policy,
    /// tilted, decides at <c>DelayMs</c>) and the axis it secures.
    /// </summary>
    public (int Held, double Price, int DelayMs, bool ForMessages) HoldSummary
    {
        get
        {
            var state = _state;
            if (state.ClassHoldMs is not { } hold)
            {
                return (0, double.NaN, int.MinValue, false);
            }

            int held = 0, first = -1;
            for (int c = 0; c < hold.Length; c++)
            {
                if (hold[c] != int.MinValue)
                {
                    held++;
                    first = first < 0 ? c : first;
                }
            }

            if (first < 0)
            {
                return (0, double.NaN, int.MinValue, false);
            }

            lock (_feedbackLock)
            {
                return (held, state.ClassHoldPrice is { } prices ? prices[first] : double.NaN, hold[first], _guard.HeldForMessages(first));
            }
        }
    }

    /// <summary>Services with enough outcomes to decide themselves that the model decides because the evidence says it does better there (as of the last refresh).</summary>
    public int ServicesKeptByModel
    {
        get
        {
            lock (_feedbackLock)
            {
                return _servicesKeptByModel;
            }
        }
    }

    // ------------------------------------------------------------------ the model

    /// <summary>
    /// Loads <paramref name="path"/> with <paramref name="loader"/> and swaps it in atomically; a file that does not
    /// load or validate is refused with a reason and the model in use stays. Safe to call while deciding.
    /// </summary>
    public bool TryLoadModel(IModelLoader loader, string path, out string reason)
    {
        if (!loader.TryLoad(path, out var predictor, out reason) || predictor is null)
        {
            Interlocked.Increment(ref _reloadsRefused);
            _lastReloadError = reason;
            Log.ModelRefused(_logger, _model?.Predictor.Name ?? "none (cold start)", reason);
            return false;
        }

        UseModel(predictor, path);
        reason = "";
        return true;
    }

    /// <summary>
    /// Swaps in a model already loaded (by the node's configuration validation, which loads <c>adaptive.model</c> once)
    /// atomically, with fresh calibration and drift statistics. Safe to call while deciding.
    /// </summary>
    public void UseModel(ILifetimePredictor predictor, string path)
    {
        ArgumentNullException.ThrowIfNull(predictor);
        _model = new LoadedModel(predictor, path, _time.GetUtcNow());
        Interlocked.Increment(ref _reloads);
        lock (_feedbackLock)
        {
            // A new model starts with fresh calibration and drift statistics (the lifetime quantiles and the price stay).
            foreach (var a in _calHits.Concat(_calCounts))
            {
                Array.Clear(a);
            }

            Array.Clear(_driftPredicted);
            Array.Clear(_driftObserved);
            Array.Clear(_driftCount);
            _guard.Reset();
            foreach (var a in new[] { _evidenceN, _evidenceOwnSyncs, _evidenceOwnExposure, _evidenceModelSyncs, _evidenceModelExposure })
            {
                Array.Clear(a);
            }

            Array.Clear(_modelKeepsService);
            _state = BuildState();
        }

        Log.ModelLoaded(_logger, predictor.Name, path);
    }

    /// <summary>Drops the model: back to cold start.</summary>
    public void UnloadModel()
    {
        _model = null;
        Log.ColdStart(_logger, _options.ColdStartMinSamples);
    }

    // ------------------------------------------------------------------ status

    public AdaptiveStatus GetStatus()
    {
        long live;
        lock (_ledgerLock)
        {
            live = _ledger.Live;
        }

        lock (_feedbackLock)
        {
            var model = _model;
            var classes = new List<AdaptiveClassStatus>(ClassCount);
            for (int c = 0; c < ClassCount; c++)
            {
                var h = _histograms[c];
                double n = _driftCount[c];
                double predicted = n > 0 ? _driftPredicted[c] / n : double.NaN;
                double observedModel = n > 0 ? _driftObserved[c] / n : double.NaN;
                double drift = n > 0 ? Math.Abs(predicted - observedModel) : double.NaN;
                classes.Add(new AdaptiveClassStatus(_classes[c].Name, _classes[c].NeverSkip, _classes[c].CheckpointSeconds, h.Total,
                    h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.FractionAbove(_classes[c].CheckpointSeconds), predicted, drift,
                    n >= 100 && drift > _options.DriftThreshold));
            }

            return new AdaptiveStatus(model is null ? "cold-start" : "model", model?.Predictor.Name, model?.Path, model?.LoadedAt,
                Interlocked.Read(ref _reloads), Interlocked.Read(ref _reloadsRefused), _lastReloadError, _options.LossBudget, _realized,
                _price, _now, _delayed, _never, _static, _neverSkip, _revisedNow, _revisedHeld, _observed, 0, _driftHints, classes,
                _realizedSinceStart, _neverSyncShare, live, Interlocked.Read(ref _guarded), GetComparison());
        }
    }

    /// <summary>The running comparison with the static policy (adaptive as applied vs static on the same ended connections).</summary>
    public AdaptiveComparison GetComparison()
    {
        lock (_feedbackLock)
        {
            long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var since = BaselineWindow.Empty;
            var hour = BaselineWindow.Empty;
            var list = new List<AdaptiveClassComparison>(ClassCount);
            for (int c = 0; c < ClassCount; c++)
            {
                if (!_classes[c].Actable)
                {
                    continue;
                }

                var s = _guard.SinceStart(c);
                var h = _guard.LastHour(c, nowMs);
                since = since.Plus(s);
                hour = hour.Plus(h);
                list.Add(new AdaptiveClassComparison(_classes[c].Name, _classes[c].CheckpointSeconds, _options.Guard ? _guard.RegionsGuarded(c) : 0, s, h));
            }

            return new AdaptiveComparison(since, hour, list);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _outcomes.OnCompleted();
        _pipeline.Dispose();
        _outcomes.Dispose();
    }

    /// <param name="CheckpointSeconds">The class's static delay (its own when <c>delayed</c>, else the checkpoint): the revision point and the guard's baseline.</param>
    /// <param name="OperatorNever">A class the operator set to never sync: outside the budget, reported apart.</param>
    /// <param name="Actable">A class the adaptive policy decides (neither never-skip nor never-sync).</param>
    private sealed record ClassInfo(string Name, bool NeverSkip, double CheckpointSeconds, int CheckpointMs, bool OperatorNever, bool Actable);

    private sealed record LoadedModel(ILifetimePredictor Predictor, string? Path, DateTimeOffset LoadedAt);

    /// <summary>What a decision reads, swapped whole after each feedback batch.</summary>
    /// <summary>The same rule as the model's: the grid delay minimizing price · P(synced) + E[exposure], from a lifetime histogram.</summary>
    private static int BestDelayMs(LifetimeHistogram h, double price, double maxDelaySeconds = double.PositiveInfinity)
    {
        int best = 0;
        double bestCost = double.PositiveInfinity;
        for (int g = 0; g < s_grid.Length; g++)
        {
            double d = s_grid[g];
            if (d > maxDelaySeconds)
            {
                break;
            }

            double cost = d == 0 ? price : double.IsPositiveInfinity(d) ? h.ExpectedMin(double.PositiveInfinity) : (price * h.FractionAbove(d)) + h.ExpectedMin(d);
            if (cost < bestCost)
            {
                bestCost = cost;
                best = g;
            }
        }

        return s_gridMs[best];
    }

    private sealed class DecisionState(double price, float[] classLongShare, int[] classDelayMs, bool[]? fallback, int[]? serviceDelayMs, float[]? serviceLongShare,
        int[]? serviceSlot, double[] servicePrior, double serviceMaxDelay, int[]? classHoldMs, double[]? classHoldPrice, int[]? serviceOwnSlot, double[] serviceOwnDist)
    {
        public readonly double Price = price;

        /// <summary>Per service bucket deciding on its own lifetimes: 1 + its slot in <see cref="ServiceOwnDist"/>; 0: none.</summary>
        public readonly int[]? ServiceOwnSlot = serviceOwnSlot;

        /// <summary>Per slot: P(L &gt; d) then E[min(L, d)] on the grid, from the service's own lifetimes.</summary>
        public readonly double[] ServiceOwnDist = serviceOwnDist;

        /// <summary>Per held class: the price at which the model's choices dominate static (NaN: none, <see cref="ClassHoldMs"/> decides); null: none.</summary>
        public readonly double[]? ClassHoldPrice = classHoldPrice;

        /// <summary>Per class: the since-start account holds it at this delay (ms; int.MinValue: not held); null: no class held.</summary>
        public readonly int[]? ClassHoldMs = classHoldMs;

        /// <summary>Per service bucket: 1 + its slot in <see cref="ServicePrior"/> (a service with few outcomes, blended with the model); 0: none.</summary>
        public readonly int[]? ServiceSlot = serviceSlot;

        public readonly double[] ServicePrior = servicePrior;

        public readonly double ServiceMaxDelay = serviceMaxDelay;

        /// <summary>Per service bucket: the delay its online lifetimes give (ms; int.MinValue: too few outcomes, ask the model); null: none yet.</summary>
        public readonly int[]? ServiceDelayMs = serviceDelayMs;

        public readonly float[]? ServiceLongShare = serviceLongShare;

        /// <summary>Per class and model grid index (class · 16 + index): the guard's fallback to the static delay; null: none.</summary>
        public readonly bool[]? Fallback = fallback;
        public readonly float[] ClassLongShare = classLongShare;

        /// <summary>Cold-start delay per class (ms; 0 now, −1 never, int.MinValue: not enough outcomes, use the static policy).</summary>
        public readonly int[] ClassDelayMs = classDelayMs;
    }
}
