using System.Globalization;
using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>One policy's totals over a trace.</summary>
public sealed record PolicyResult(string Name, long Messages, long Bytes, double ExposureSeconds, double ExpectedLoss);

/// <summary>What <c>clustersync simulate --json</c> prints.</summary>
public sealed record SimulationReport(long Connections, double SpanSeconds, IReadOnlyList<PolicyResult> Policies);

/// <summary>A (messages, exposure) point of a policy family, with the knob that produced it.</summary>
public readonly record struct FrontierPoint(double Knob, long Messages, double ExposureSeconds);

/// <summary>
/// Replays a trace under sync policies. Per connection with lifetime L and delay d (∞ = never): if L &gt; d it is
/// announced at d and destroyed at L — 2 messages (a new record and a destroy record; updates are not counted, they
/// are the same for every policy) — else nothing is sent; its exposure is min(L, d). expected_loss =
/// Σ exposure / span: connections a failover at a random instant would lose.
/// </summary>
public sealed class PolicySimulator
{
    public const int MessagesPerSync = 2;

    /// <summary>Budgets of <c>adaptive@budget</c>: the share of connection-seconds left unreplicated.</summary>
    public static IReadOnlyList<double> DefaultBudgets { get; } = [0.002, 0.005, 0.01, 0.02, 0.05];

    private readonly TraceRecord[] _records;
    private readonly double[] _lifetime;
    private readonly int[] _syncBytes;
    private readonly LifetimeEstimate[]? _estimates;
    private readonly LifetimeModel? _model;
    private readonly double _totalLifetime;

    public PolicySimulator(IReadOnlyList<TraceRecord> records, LifetimeModel? model)
    {
        _records = [.. records];
        _lifetime = _records.Select(r => r.DurationSeconds).ToArray();
        _syncBytes = _records.Select(r => SyncBytes(r)).ToArray();
        _totalLifetime = _lifetime.Sum();
        Connections = _records.Length;
        SpanSeconds = _records.Length == 0 ? 0 : _records.Max(r => r.EndUnixSeconds) - _records.Min(r => r.StartUnixSeconds);
        _model = model;
        if (model is not null)
        {
            var starts = _records.Select(r => FeatureExtractor.FromTrace(r)).ToArray();
            _estimates = new LifetimeEstimate[starts.Length];
            model.PredictBatch(starts, _estimates);
        }
    }

    public long Connections { get; }

    public double SpanSeconds { get; }

    /// <summary>Σ lifetimes: the connection-seconds a budget is a share of.</summary>
    public double TotalLifetimeSeconds => _totalLifetime;

    /// <summary>Bytes of the records one synced connection costs: a new record and a destroy record (IPv4 50 + 26, IPv6 74 + 50).</summary>
    public static int SyncBytes(in TraceRecord r) => r.SourceAddress.Contains(':', StringComparison.Ordinal) ? 74 + 50 : 50 + 26;

    public SimulationReport Run(IReadOnlyList<double>? budgets = null)
    {
        var list = new List<PolicyResult>
        {
            Static("sync-all", 0),
            Static("static-3s", 3),
            Static("static-30s", 30),
            PerClassStatic(),
            Oracle("oracle", 3),
        };
        if (_model is not null)
        {
            foreach (var b in budgets ?? DefaultBudgets)
            {
                var (price, _) = PriceForBudget(b);
                list.Add(Adaptive($"adaptive@{b.ToString("0.####", CultureInfo.InvariantCulture)}", price));
            }
        }

        return new SimulationReport(Connections, SpanSeconds, list);
    }

    public PolicyResult Static(string name, double delay) => Evaluate(name, i => delay);

    /// <summary>The default policy classes (mission-critical full, short-lived 3 s, non-sync never, default full) with the built-in classifier.</summary>
    public PolicyResult PerClassStatic()
    {
        var catalog = new ServiceClassCatalog(new PolicyOptions());
        return Evaluate("per-class-static", i =>
        {
            var r = _records[i];
            var key = ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, r.SourcePort, r.DestinationPort, r.Protocol);
            var p = catalog.PolicyOf(catalog.Classify(key));
            return p.Kind switch
            {
                SyncPolicyKind.Full => 0,
                SyncPolicyKind.None => double.PositiveInfinity,
                _ => p.Delay.TotalSeconds,
            };
        });
    }

    /// <summary>Perfect knowledge: sync at once exactly the connections that live longer than <paramref name="threshold"/>, never the rest.</summary>
    public PolicyResult Oracle(string name, double threshold) => Evaluate(name, i => _lifetime[i] > threshold ? 0 : double.PositiveInfinity);

    public PolicyResult Adaptive(string name, double price)
    {
        var model = _model ?? throw new InvalidOperationException("no model");
        var est = _estimates!;
        return Evaluate(name, i => LifetimeModel.DelayGrid[model.ChooseDelay(est[i], price)]);
    }

    /// <summary>
    /// The largest price (fewest messages) whose realized exposure share stays within <paramref name="budget"/> —
    /// the threshold the runtime feedback loop converges to. Bisection over log(price).
    /// </summary>
    public (double Price, PolicyResult Result) PriceForBudget(double budget)
        => Bisect(r => r.ExposureSeconds <= budget * _totalLifetime, higherIsCheaper: true);

    /// <summary>The adaptive point with the least exposure that sends no more than <paramref name="messages"/>.</summary>
    public (double Price, PolicyResult Result) AdaptiveAtMessages(long messages)
        => Best(Bisect(r => r.Messages <= messages, higherIsCheaper: false), r => r.Messages <= messages, r => r.ExposureSeconds);

    /// <summary>The adaptive point with the fewest messages whose exposure is no more than <paramref name="exposure"/>.</summary>
    public (double Price, PolicyResult Result) AdaptiveAtExposure(double exposure)
        => Best(Bisect(r => r.ExposureSeconds <= exposure, higherIsCheaper: true), r => r.ExposureSeconds <= exposure, r => r.Messages);

    // The price → (messages, exposure) map is a staircase (the model has finitely many buckets), so bisection alone can
    // stop on a step; a dense sweep of prices is searched too and the best feasible point wins.
    private (double Price, PolicyResult Result) Best((double Price, PolicyResult Result) bisected, Func<PolicyResult, bool> feasible, Func<PolicyResult, double> cost)
    {
        var best = bisected;
        bool bestOk = feasible(best.Result);
        foreach (var price in Prices(160))
        {
            var r = Adaptive("probe", price);
            if (feasible(r) && (!bestOk || cost(r) < cost(best.Result)))
            {
                best = (price, r);
                bestOk = true;
            }
        }

        return best;
    }

    // Price p: higher p → fewer messages, more exposure. For "within exposure" find the largest feasible p;
    // for "within messages" find the smallest feasible p.
    private (double Price, PolicyResult Result) Bisect(Func<PolicyResult, bool> feasible, bool higherIsCheaper)
    {
        double lo = Math.Log(1e-4), hi = Math.Log(1e6);
        PolicyResult? best = null;
        double bestPrice = higherIsCheaper ? Math.Exp(lo) : Math.Exp(hi);
        for (int it = 0; it < 36; it++)
        {
            double mid = (lo + hi) / 2;
            var r = Adaptive("probe", Math.Exp(mid));
            bool ok = feasible(r);
            if (ok)
            {
                best = r;
                bestPrice = Math.Exp(mid);
            }

            if (ok == higherIsCheaper)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return (bestPrice, best ?? Adaptive("probe", bestPrice));
    }

    /// <summary>Adaptive points over a sweep of prices.</summary>
    public List<FrontierPoint> AdaptiveFrontier(int points = 96)
    {
        var list = new List<FrontierPoint>();
        foreach (var price in Prices(points))
        {
            var r = Adaptive("sweep", price);
            list.Add(new FrontierPoint(price, r.Messages, r.ExposureSeconds));
        }

        return list;
    }

    private static IEnumerable<double> Prices(int points)
        => Enumerable.Range(0, points).Select(i => Math.Exp(Math.Log(1e-4) + ((Math.Log(1e6) - Math.Log(1e-4)) * i / (points - 1))));

    /// <summary>Oracle points: sync at once iff lifetime &gt; threshold, over a sweep of thresholds.</summary>
    public List<FrontierPoint> OracleFrontier()
        => Thresholds().Select(t => { var r = Oracle("o", t); return new FrontierPoint(t, r.Messages, r.ExposureSeconds); }).ToList();

    /// <summary>Static points: one delay for every connection, over a sweep of delays.</summary>
    public List<FrontierPoint> StaticFrontier()
        => Thresholds().Select(t => { var r = Static("s", t); return new FrontierPoint(t, r.Messages, r.ExposureSeconds); }).ToList();

    private static IEnumerable<double> Thresholds()
    {
        yield return 0;
        for (double t = 0.05; t < 4000; t *= 1.35)
        {
            yield return t;
        }
    }

    private PolicyResult Evaluate(string name, Func<int, double> delayOf)
    {
        long messages = 0, bytes = 0;
        double exposure = 0;
        for (int i = 0; i < _lifetime.Length; i++)
        {
            double d = delayOf(i);
            double l = _lifetime[i];
            if (l > d)
            {
                messages += MessagesPerSync;
                bytes += _syncBytes[i];
                exposure += d;
            }
            else
            {
                exposure += l;
            }
        }

        return new PolicyResult(name, messages, bytes, exposure, SpanSeconds > 0 ? exposure / SpanSeconds : 0);
    }
}
