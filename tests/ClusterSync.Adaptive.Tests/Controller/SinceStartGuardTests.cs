using System.Reactive.Concurrency;
using ClusterSync.Table;

namespace ClusterSync.Adaptive.Tests.Controller;

/// <summary>
/// The guard's since-start account: a model that is wrong on purpose, replayed through the controller on a virtual
/// clock over a sparse home/lab-like trace, must not leave adaptive behind static 3 s on both axes at once (with
/// <c>guardSinceStart</c> on).
/// </summary>
public sealed class SinceStartGuardTests
{
    private static readonly ServiceClassDefinition[] OneClass = [new("default", SyncPolicy.Delayed(TimeSpan.FromSeconds(3)))];

    [Theory]
    [InlineData(0.01)]
    [InlineData(0.05)]
    [InlineData(0.1)]
    [InlineData(0.2)]
    public void Replay_OppositeModelOnSparseTrace_NotWorseThanStatic3sOnBothAxes(double budget)
    {
        var trace = SparseTrace(seed: 808, connections: 800, hours: 10);
        var options = new AdaptiveOptions { Enabled = true, LossBudget = budget, GuardSinceStart = true };

        var withGuard = Replay(trace, options, new OppositePredictor(trace));
        var withoutGuard = Replay(trace, options with { Guard = false }, new OppositePredictor(trace));

        // The trace and the model make the case: the model alone is behind static 3 s on both axes.
        Assert.True(withoutGuard.Messages > withoutGuard.StaticMessages && withoutGuard.Exposure > withoutGuard.StaticExposure,
            $"without the guard: {withoutGuard}");
        Assert.False(withGuard.Messages > withGuard.StaticMessages && withGuard.Exposure > withGuard.StaticExposure, $"budget {budget}: {withGuard}");

        // What the guard judged on is what /status shows and what the replay counted: one account.
        var since = withGuard.Comparison.SinceStart;
        Assert.Equal(trace.Length, since.Connections);
        Assert.Equal(withGuard.Messages, since.AdaptiveMessages);
        Assert.Equal(withGuard.StaticMessages, since.StaticMessages);
        Assert.Equal(withGuard.Exposure, since.AdaptiveExposureSeconds, 3);
        Assert.Equal(withGuard.StaticExposure, since.StaticExposureSeconds, 3);
    }

    [Fact]
    public void Replay_OppositeModelAtHighBudget_WinsOnMessages()
    {
        // A budget far above the loss static 3 s gives: the operator trades exposure for messages, so the guard must
        // bring the messages below static's (not the exposure) — if they do not drop, the model is not paying.
        var trace = SparseTrace(seed: 809, connections: 800, hours: 10);
        var r = Replay(trace, new AdaptiveOptions { Enabled = true, LossBudget = 0.2, GuardSinceStart = true }, new OppositePredictor(trace));

        Assert.True(r.Messages <= r.StaticMessages, r.ToString());
    }

    [Fact]
    public void Replay_ModelThatKnowsTheLifetimes_NotWorseThanStatic3sOnBothAxes()
    {
        // A model that knows each lifetime, under a budget above static's loss. (Round 5 held it on static 3 s for 274
        // of 800 decisions on this trace; since round 6 it is not held here — seed 811 below is.)
        var trace = SparseTrace(seed: 810, connections: 800, hours: 10);
        var r = Replay(trace, new AdaptiveOptions { Enabled = true, LossBudget = 0.05, GuardSinceStart = true }, new OraclePredictor(trace));

        Assert.False(r.Messages > r.StaticMessages && r.Exposure > r.StaticExposure, r.ToString());
    }

    [Fact]
    public void Replay_ModelThatKnowsTheLifetimesHeldEarly_DecidedAtADominatingPriceMeetsTheBudget()
    {
        // On this seed the budget loop's first hour leaves a model that knows every lifetime a hair behind static 3 s
        // on messages and even on exposure. Held on static 3 s (round 6 rules) it stayed there for 742 of 800 decisions
        // at 106.7 % / 100.0 % of static's messages / exposure and 0.23 × the budget. Round 7: the held class is decided
        // by the model at a price where its choices beat static on both axes (just above the 3-s delay for this model),
        // the deficit is paid back on both and the hold releases: the run spends its budget. (Round 8: while no price
        // dominates, the tilt keeps a one-standard-error lead on the secured axis, not just any lead; the hold lasts
        // longer — 426 of 800 decisions on the first round-8 build — still far from round 6's 742.)
        var trace = SparseTrace(seed: 811, connections: 800, hours: 10);
        var r = Replay(trace, new AdaptiveOptions { Enabled = true, LossBudget = 0.05, GuardSinceStart = true }, new OraclePredictor(trace));

        Assert.False(r.Messages > r.StaticMessages && r.Exposure > r.StaticExposure, r.ToString());
        Assert.InRange(r.RealizedSinceStart, 0.75 * 0.05, 1.25 * 0.05);
        Assert.True(r.Guarded < trace.Length * 0.6, r.ToString());
    }

    [Fact]
    public void Replay_ModelNoBetterThanStaticOnManySeeds_NoRunEndsBehindStaticOnBothAxes()
    {
        // A model with little skill (its belief is the true lifetime times e^N(0, 2)) is held on static's point on many
        // of these runs. A hold that only kept the secured axis at static's total ended a hair behind on both on some
        // (the generator day at budget 0.19: 100.66 % / 100.0016 %); the hold keeps a one-standard-error lead there.
        var behind = new List<string>();
        int held = 0;
        for (int seed = 900; seed < 930; seed++)
        {
            var trace = SparseTrace(seed, connections: 800, hours: 10);
            foreach (double budget in new[] { 0.05, 0.1, 0.2 })
            {
                var r = Replay(trace, new AdaptiveOptions { Enabled = true, LossBudget = budget, GuardSinceStart = true }, new NoisyPredictor(trace, seed));
                held += r.Guarded > 0 ? 1 : 0;
                if (r.Messages > r.StaticMessages && r.Exposure > r.StaticExposure)
                {
                    behind.Add($"seed {seed} budget {budget}: {r}");
                }
            }
        }

        Assert.True(held >= 30, $"{held} of 90 runs guarded: the model must be bad enough to be held");
        Assert.True(behind.Count == 0, string.Join("\n", behind));
    }

    /// <summary>A home/lab-like day: name lookups, short web, some minutes-long sessions, a few connections of hours.</summary>
    private static Connection[] SparseTrace(int seed, int connections, double hours)
    {
        var rng = new Random(seed);
        var list = new Connection[connections];
        long startMs = 1_700_000_000_000;
        for (int i = 0; i < connections; i++)
        {
            long created = startMs + (long)(rng.NextDouble() * hours * 3_600_000);
            double u = rng.NextDouble();
            (byte proto, ushort port, double median, double sigma) = u switch
            {
                < 0.45 => ((byte)17, (ushort)53, 0.05, 1.0),
                < 0.65 => ((byte)6, (ushort)443, 0.8, 1.0),
                < 0.80 => ((byte)6, (ushort)443, 12.0, 1.2),
                < 0.88 => ((byte)6, (ushort)80, 1.5, 1.5),
                < 0.93 => ((byte)17, (ushort)123, 0.05, 0.5),
                < 0.97 => ((byte)17, (ushort)5353, 0.5, 1.5),
                _ => ((byte)6, (ushort)8009, 1800.0, 1.0),
            };
            double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            long life = Math.Max(1, (long)(median * Math.Exp(sigma * z) * 1000));
            var key = ConnectionKey.IPv4(0x0A00_0000u | (uint)(i + 1), 0x0B00_0000u | (uint)rng.Next(1, 50), (ushort)rng.Next(32768, 61000), port, proto);
            list[i] = new Connection(key, created, created + life);
        }

        Array.Sort(list, (a, b) => a.CreatedMs.CompareTo(b.CreatedMs));
        return list;
    }

    /// <summary>
    /// Replays <paramref name="trace"/> through a controller with one class delayed 3 s, on a virtual clock (its time and
    /// its feedback buffers on one <see cref="HistoricalScheduler"/>, the feedback run when a batch closes), as a node's
    /// engine drives it: a decision at each start, the revision at the checkpoint, the outcome at the end; delays on the
    /// engine's one-byte grid. Messages 2 per synchronized connection; static 3 s on the same connections.
    /// </summary>
    private static ReplayTotals Replay(Connection[] trace, AdaptiveOptions options, ILifetimePredictor predictor)
    {
        var scheduler = new HistoricalScheduler(DateTimeOffset.FromUnixTimeMilliseconds(trace[0].CreatedMs));
        using var controller = new AdaptiveController(options, OneClass, predictor, new SchedulerClock(scheduler),
            bufferScheduler: scheduler, feedbackScheduler: ImmediateScheduler.Instance);
        var policy = OneClass[0].Policy;
        int n = trace.Length;
        var announcedAt = new long[n];
        Array.Fill(announcedAt, long.MaxValue);
        var delayMs = new int[n];
        var score = new float[n];
        var events = new PriorityQueue<(int Index, int Kind), (long Ms, int Kind, int Index)>();
        for (int i = 0; i < n; i++)
        {
            long created = trace[i].CreatedMs;
            while (events.TryPeek(out var ev, out var at) && at.Ms <= created)
            {
                events.Dequeue();
                Handle(ev.Index, ev.Kind, at.Ms);
            }

            Advance(created);
            var d = controller.Decide(trace[i].Key, Entry(trace[i]), 0, policy);
            score[i] = d.Score;
            switch (d.Kind)
            {
                case SyncPolicyKind.Full:
                    announcedAt[i] = created;
                    break;
                case SyncPolicyKind.Delayed:
                    delayMs[i] = Rounded(d.DelayMs);
                    if (created + delayMs[i] < trace[i].EndedMs)
                    {
                        events.Enqueue((i, 1), (created + delayMs[i], 1, i));
                    }

                    break;
                default:
                    delayMs[i] = -1;
                    break;
            }

            events.Enqueue((i, 0), (trace[i].EndedMs, 0, i));
        }

        while (events.TryDequeue(out var ev, out var at))
        {
            Handle(ev.Index, ev.Kind, at.Ms);
        }

        Advance(trace.Max(c => c.EndedMs) + 2_000);
        long messages = 0, staticMessages = 0;
        double exposure = 0, staticExposure = 0;
        for (int i = 0; i < n; i++)
        {
            long life = trace[i].EndedMs - trace[i].CreatedMs;
            messages += announcedAt[i] < trace[i].EndedMs ? 2 : 0;
            exposure += (Math.Min(trace[i].EndedMs, announcedAt[i]) - trace[i].CreatedMs) / 1000.0;
            staticMessages += life > 3000 ? 2 : 0;
            staticExposure += Math.Min(life, 3000) / 1000.0;
        }

        var status = controller.GetStatus();
        return new ReplayTotals(messages, exposure, staticMessages, staticExposure, status.DecidedGuarded, status.Comparison, status.RealizedLossSinceStart);

        void Advance(long ms)
        {
            var to = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            if (to > scheduler.Now)
            {
                scheduler.AdvanceTo(to);
            }
        }

        void Handle(int i, int kind, long ms)
        {
            Advance(ms);
            var c = trace[i];
            if (kind == 1)
            {
                var r = controller.Revise(c.Key, Entry(c), default, false, 0, ms - c.CreatedMs);
                if (r.Kind == SyncPolicyKind.Full)
                {
                    announcedAt[i] = ms;
                    delayMs[i] = (int)(ms - c.CreatedMs);
                }
                else if (r.Kind == SyncPolicyKind.Delayed)
                {
                    long at = ms + Math.Max(1, r.DelayMs);
                    delayMs[i] = (int)(at - c.CreatedMs);
                    if (at < c.EndedMs)
                    {
                        events.Enqueue((i, 1), (at, 1, i));
                    }
                }

                return;
            }

            bool synced = announcedAt[i] < ms;
            controller.OnEnded(new ConnectionOutcome(c.Key, 0, c.CreatedMs, ms, ConnectionEndReason.Destroyed, synced, announcedAt[i] == c.CreatedMs ? 0 : delayMs[i],
                score[i], synced ? 2 : 0, ProtocolState.TcpEstablished, default, false));
        }
    }

    private static ConnectionEntry Entry(in Connection c)
        => new() { CreatedMs = c.CreatedMs, State = c.Key.Protocol == 6 ? ProtocolState.TcpEstablished : ProtocolState.UdpReplied };

    private static int Rounded(int ms) => DelayGrid.Decode(DelayGrid.Encode(ms));

    private readonly record struct Connection(ConnectionKey Key, long CreatedMs, long EndedMs);

    private sealed record ReplayTotals(long Messages, double Exposure, long StaticMessages, double StaticExposure, long Guarded, AdaptiveComparison Comparison, double RealizedSinceStart)
    {
        public override string ToString()
            => $"adaptive {Messages} messages ({100.0 * Messages / StaticMessages:F1} %), {Exposure:F0} s ({100 * Exposure / StaticExposure:F1} %) against static 3 s {StaticMessages} / {StaticExposure:F0} s; {Guarded} guarded decisions, realized loss since start {RealizedSinceStart:F4}";
    }

    /// <summary>A model with little skill: it believes each connection lives its true lifetime times e^N(0, 2) (seeded), and applies the price rule to that belief.</summary>
    private sealed class NoisyPredictor(Connection[] trace, int seed) : ILifetimePredictor
    {
        private readonly Dictionary<ConnectionKey, double> _belief = Beliefs(trace, seed);

        public string Name => "noisy";

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            double belief = _belief[key];
            probabilityLong = belief > checkpointSeconds ? 0.7f : 0.3f;
            return Choose(belief, price);
        }

        private static Dictionary<ConnectionKey, double> Beliefs(Connection[] trace, int seed)
        {
            var rng = new Random(seed * 7919);
            return trace.ToDictionary(c => c.Key, c =>
            {
                double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                return (c.EndedMs - c.CreatedMs) / 1000.0 * Math.Exp(2 * z);
            });
        }
    }

    /// <summary>A model wrong on purpose: it believes each connection lives 9 s² / its true lifetime (the opposite side of 3 s, as far from it), and applies the price rule to that belief.</summary>
    private sealed class OppositePredictor(Connection[] trace) : ILifetimePredictor
    {
        private readonly Dictionary<ConnectionKey, double> _life = trace.ToDictionary(c => c.Key, c => (c.EndedMs - c.CreatedMs) / 1000.0);

        public string Name => "opposite";

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            double belief = 9 / _life[key];
            probabilityLong = belief > checkpointSeconds ? 0.9f : 0.1f;
            return Choose(belief, price);
        }
    }

    /// <summary>A model that knows each connection's lifetime and applies the price rule to it.</summary>
    private sealed class OraclePredictor(Connection[] trace) : ILifetimePredictor
    {
        private readonly Dictionary<ConnectionKey, double> _life = trace.ToDictionary(c => c.Key, c => (c.EndedMs - c.CreatedMs) / 1000.0);

        public string Name => "oracle";

        public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
        {
            double life = _life[key];
            probabilityLong = life > checkpointSeconds ? 0.99f : 0.01f;
            return Choose(life, price);
        }
    }

    /// <summary>The grid delay minimizing <c>price · [L &gt; d] + min(L, d)</c> for a lifetime believed exactly (ties: the longer delay).</summary>
    private static int Choose(double life, double price)
    {
        double best = double.PositiveInfinity;
        int bestMs = 0;
        foreach (double d in ClusterSync.Adaptive.Model.LifetimeModel.DelayGrid)
        {
            double cost = (life > d ? price : 0) + Math.Min(life, d);
            if (cost <= best)
            {
                best = cost;
                bestMs = double.IsPositiveInfinity(d) ? -1 : (int)Math.Round(d * 1000);
            }
        }

        return bestMs;
    }

    private sealed class SchedulerClock(HistoricalScheduler scheduler) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => scheduler.Now;
    }
}
