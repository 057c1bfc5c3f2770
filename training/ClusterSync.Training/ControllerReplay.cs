using System.Reactive.Concurrency;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Adaptive.Features;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Table;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>One decision of a replay (what the controller said for a new connection), for comparing runs.</summary>
internal readonly record struct ReplayDecision(SyncPolicyKind Kind, int DelayMs);

/// <summary>
/// What the node's controller did over a trace. <see cref="RealizedLoss"/>: exposure-seconds / connection-seconds on
/// the classes the policy acts on, counted after the warm-up; the operator's never-sync classes apart
/// (<see cref="NeverSyncClassShare"/>).
/// </summary>
public sealed record ReplayResult(
    string Name,
    double Budget,
    long Connections,
    long Messages,
    long Bytes,
    double ExposureSeconds,
    double RealizedLoss,
    double RealizedLossAll,
    double ControllerRealizedLoss,
    double ControllerRealizedLossSinceStart,
    double NeverSyncClassShare,
    double FinalPrice,
    long Guarded,
    AdaptiveComparison Comparison);

/// <summary>
/// "One policy, two clocks": replays a trace through the node's own <see cref="AdaptiveController"/> — the same
/// decision, guard, checkpoint revision, cold start, calibration and Rx feedback code — on a virtual clock in trace
/// time: the controller's <see cref="TimeProvider"/> and its feedback buffer's scheduler are one
/// <see cref="HistoricalScheduler"/>, advanced event by event, and the feedback batches run synchronously when they
/// close, so a replay is deterministic. Outcomes are fed back as connections end. The price starts where the operator's
/// configuration puts it and only the feedback loop moves it: nothing is set from the trace's true lifetimes.
/// Connections are classified by the default service classes (<see cref="PolicyOptions"/>) unless given others.
/// Delays are rounded to the engine's one-byte grid and scores to its one byte, as a node records them, and events at
/// one instant run as the engine's would: ends, then checkpoints, then new connections.
/// Messages: 2 per announced connection (new + destroy), as <see cref="PolicySimulator"/> counts them.
/// </summary>
internal sealed class ControllerReplay
{
    private readonly TraceRecord[] _records;
    private readonly ConnectionKey[] _keys;
    private readonly byte[] _class;
    private readonly SyncPolicy[] _policy;
    private readonly ServiceClassCatalog _catalog;
    private readonly long _startMs;
    private readonly long _endMs;

    public ControllerReplay(IReadOnlyList<TraceRecord> records, PolicyOptions? policy = null)
    {
        _records = records.OrderBy(r => r.StartUnixSeconds).ToArray();
        _catalog = new ServiceClassCatalog(policy ?? new PolicyOptions());
        _keys = new ConnectionKey[_records.Length];
        _class = new byte[_records.Length];
        _policy = new SyncPolicy[_records.Length];
        for (int i = 0; i < _records.Length; i++)
        {
            _keys[i] = KeyOf(_records[i], i);
            _class[i] = _catalog.Classify(_keys[i]);
            _policy[i] = _catalog.PolicyOf(_class[i]);
        }

        _startMs = _records.Length == 0 ? 0 : ToMs(_records[0].StartUnixSeconds);
        _endMs = _records.Length == 0 ? 0 : _records.Max(r => ToMs(r.EndUnixSeconds));
    }

    public IReadOnlyList<ServiceClassDefinition> Classes => _catalog.Classes;

    /// <summary>
    /// One class, <c>default</c>, delayed <paramref name="delaySeconds"/> for every connection: the controller acts on
    /// all of them and its baseline is exactly the static policy <c>static-3s</c> is (no never-sync or never-skip
    /// class on either side), so the comparison with it is like for like.
    /// </summary>
    public static PolicyOptions UniformPolicy(double delaySeconds = 3) => new()
    {
        DefaultClass = "default",
        Classes = [new ServiceClassOptions { Name = "default", Policy = "delayed", DelaySeconds = delaySeconds }],
        Rules = [],
    };

    public long Connections => _records.Length;

    /// <summary>
    /// A key whose features (<see cref="FeatureExtractor.FromKey"/>) are the record's (<see cref="FeatureExtractor.FromTrace"/>):
    /// the same ports and protocol, an internal (10/8) or external (11/8) address as the record's side was, unique per record.
    /// </summary>
    public static ConnectionKey KeyOf(in TraceRecord r, int index)
    {
        uint low = (uint)index & 0x00FF_FFFF;
        uint src = (FeatureExtractor.IsInternal(r.SourceAddress) ? 0x0A00_0000u : 0x0B00_0000u) | low;
        uint dst = (FeatureExtractor.IsInternal(r.DestinationAddress) ? 0x0A00_0000u : 0x0B00_0000u) | (low ^ 0x5A5A5A);
        return ConnectionKey.IPv4(src, dst, r.SourcePort, r.DestinationPort, r.Protocol);
    }

    /// <summary>
    /// Replays the trace through a new controller with <paramref name="options"/> and <paramref name="predictor"/> (null: cold
    /// start). <paramref name="tap"/>, when given, receives every outcome the controller does — as a node's telemetry recorder does.
    /// </summary>
    /// <remarks>
    /// With <paramref name="cover"/> the replay acts as a node whose classes make templates (docs/templates.md): a
    /// connection a live template covered at its start (<see cref="ReplayCover.CoveredAtStart"/>, in start order) whose
    /// decision is "announce after a delay" is left unsynchronized instead (the engine's <c>template_unsynced</c> rule),
    /// is never revised, and its outcome reaches the controller as a never-synced one; every connection's unreplicated
    /// seconds are written to <see cref="ReplayCover.UnprotectedSeconds"/>.
    /// </remarks>
    public ReplayResult Run(string name, AdaptiveOptions options, ILifetimePredictor? predictor, TimeSpan warmUp, List<ReplayDecision>? decisions = null,
        IConnectionOutcomeSink? tap = null, ReplayCover? cover = null, TextWriter? priceLog = null)
    {
        var scheduler = new HistoricalScheduler(DateTimeOffset.FromUnixTimeMilliseconds(_startMs));
        var clock = new SchedulerTimeProvider(scheduler);
        return Run(name, options, predictor, warmUp, scheduler, clock, decisions, tap, cover, priceLog);
    }

    /// <summary>The replay on a given virtual clock (tests drive a node's engine on the same kind of clock).</summary>
    private ReplayResult Run(string name, AdaptiveOptions options, ILifetimePredictor? predictor, TimeSpan warmUp, HistoricalScheduler scheduler,
        TimeProvider clock, List<ReplayDecision>? decisions, IConnectionOutcomeSink? tap = null, ReplayCover? cover = null, TextWriter? priceLog = null)
    {
        if (cover is not null && (cover.CoveredAtStart.Length != _records.Length || cover.UnprotectedSeconds.Length != _records.Length))
        {
            throw new ArgumentException($"a cover of {cover.CoveredAtStart.Length}/{cover.UnprotectedSeconds.Length} connections for a replay of {_records.Length}", nameof(cover));
        }

        using var controller = new AdaptiveController(options with { Enabled = true }, _catalog.Classes, predictor, clock,
            bufferScheduler: scheduler, feedbackScheduler: ImmediateScheduler.Instance);
        long nextLogMs = long.MinValue;
        if (priceLog is not null)
        {
            // One line a minute of trace time: what the budget loop saw and did (simulate --price-log).
            priceLog.WriteLine("time_utc,price,realized_window,realized_since_start,window_outcomes,error_weight,live,decided_now,decided_delayed,decided_never,guarded,services_kept_by_model,since_start_messages_vs_static,since_start_exposure_vs_static,held_classes,held_price,held_delay_ms,held_for");
            controller.BatchProcessed += () =>
            {
                long now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                if (now < nextLogMs)
                {
                    return;
                }

                nextLogMs = now + 60_000;
                var st = controller.GetStatus();
                var hold = controller.HoldSummary;
                priceLog.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"{clock.GetUtcNow():yyyy-MM-ddTHH:mm:ss},{st.Price:G5},{st.RealizedLoss:G4},{st.RealizedLossSinceStart:G4},{controller.WindowOutcomes:0.#},{controller.ErrorWeight:0.###},{st.LiveConnections},{st.DecidedNow},{st.DecidedDelayed},{st.DecidedNever},{st.DecidedGuarded},{controller.ServicesKeptByModel},{st.Comparison.SinceStart.MessagesRatio:0.#####},{st.Comparison.SinceStart.ExposureRatio:0.#####},{hold.Held},{hold.Price:G4},{(hold.Held > 0 ? hold.DelayMs : 0)},{(hold.Held == 0 ? "" : hold.ForMessages ? "messages" : "exposure")}"));
            };
        }

        int n = _records.Length;
        var skipNames = options.EffectiveNeverSkip(_catalog.Classes.Select(c => c.Name));
        var neverSkip = new bool[256];
        for (int c = 0; c < _catalog.Classes.Count; c++)
        {
            neverSkip[c] = skipNames.Contains(_catalog.Classes[c].Name, StringComparer.Ordinal);
        }

        var announcedAtMs = new long[n];
        Array.Fill(announcedAtMs, long.MaxValue);
        var decidedDelayMs = new int[n];
        var score = new float[n];
        // Events after a start: checkpoints (kind 1) and ends (kind 0: an end at the same instant goes first — a
        // connection that lives exactly its delay is not announced).
        var events = new PriorityQueue<(int Index, int Kind), (long Ms, int Kind, int Index)>(n);
        for (int i = 0; i < n; i++)
        {
            long created = ToMs(_records[i].StartUnixSeconds);
            while (events.TryPeek(out var ev, out var at) && at.Ms <= created)
            {
                events.Dequeue();
                Handle(ev.Index, ev.Kind, at.Ms);
            }

            Advance(created);
            var entry = new ConnectionEntry { CreatedMs = created, State = StateOf(_records[i].Protocol) };
            var d = controller.Decide(_keys[i], entry, _class[i], _policy[i]);
            decisions?.Add(new ReplayDecision(d.Kind, d.DelayMs));
            score[i] = SlotTag.DecodeScore(SlotTag.EncodeScore(d.Score)); // the engine keeps one byte of it
            long end = ToMs(_records[i].EndUnixSeconds);
            if (cover is not null && cover.CoveredAtStart[i] && d.Kind == SyncPolicyKind.Delayed)
            {
                // Covered: the template stands for it (the engine's CoverLocked): never announced, nothing scheduled,
                // and its outcome reports the decided delay, unsynced — as the engine's does.
                decidedDelayMs[i] = Rounded(d.DelayMs);
                cover.Unsynced++;
                events.Enqueue((i, 0), (end, 0, i));
                continue;
            }

            switch (d.Kind)
            {
                case SyncPolicyKind.Full:
                    announcedAtMs[i] = created;
                    decidedDelayMs[i] = 0;
                    break;
                case SyncPolicyKind.Delayed:
                    decidedDelayMs[i] = Rounded(d.DelayMs);
                    Schedule(i, 1, created + decidedDelayMs[i], end);
                    break;
                default:
                    decidedDelayMs[i] = -1;
                    break;
            }

            events.Enqueue((i, 0), (end, 0, i));
        }

        while (events.TryDequeue(out var ev, out var at))
        {
            Handle(ev.Index, ev.Kind, at.Ms);
        }

        Advance(_endMs + (long)options.FeedbackInterval.TotalMilliseconds + 1);

        // Totals: messages and exposure over the whole trace; the realized loss after the warm-up.
        long warmEnd = _startMs + (long)warmUp.TotalMilliseconds;
        long messages = 0, bytes = 0;
        double exposure = 0, lifeAfter = 0, exposureAfter = 0, lifeAll = 0, exposureAll = 0, neverClass = 0, total = 0;
        for (int i = 0; i < n; i++)
        {
            long created = ToMs(_records[i].StartUnixSeconds);
            long end = ToMs(_records[i].EndUnixSeconds);
            long unreplicatedUntil = Math.Min(end, announcedAtMs[i]);
            bool synced = announcedAtMs[i] < end;
            messages += synced ? PolicySimulator.MessagesPerSync : 0;
            bytes += synced ? PolicySimulator.SyncBytes(_records[i]) : 0;
            double e = (unreplicatedUntil - created) / 1000.0;
            exposure += e;
            if (cover is not null)
            {
                cover.UnprotectedSeconds[i] = e;
            }

            double life = (end - created) / 1000.0;
            total += life;
            if (_policy[i].Kind == SyncPolicyKind.None)
            {
                neverClass += life;
                continue;
            }

            if (neverSkip[_class[i]])
            {
                continue;
            }

            lifeAll += life;
            exposureAll += e;
            long from = Math.Max(created, warmEnd);
            lifeAfter += Math.Max(0, end - from) / 1000.0;
            exposureAfter += Math.Max(0, unreplicatedUntil - from) / 1000.0;
        }

        var status = controller.GetStatus();
        return new ReplayResult(name, options.LossBudget, n, messages, bytes, exposure,
            lifeAfter > 0 ? exposureAfter / lifeAfter : double.NaN, lifeAll > 0 ? exposureAll / lifeAll : double.NaN,
            status.RealizedLoss, status.RealizedLossSinceStart, total > 0 ? neverClass / total : 0, status.Price, status.DecidedGuarded, status.Comparison);

        void Advance(long ms)
        {
            var to = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            if (to > scheduler.Now)
            {
                scheduler.AdvanceTo(to);
            }
        }

        void Schedule(int i, int kind, long atMs, long endMs)
        {
            if (atMs < endMs)
            {
                events.Enqueue((i, kind), (atMs, kind, i));
            }
        }

        void Handle(int i, int kind, long ms)
        {
            Advance(ms);
            long created = ToMs(_records[i].StartUnixSeconds);
            if (kind == 1)
            {
                var entry = new ConnectionEntry { CreatedMs = created, State = StateOf(_records[i].Protocol) };
                var r = controller.Revise(_keys[i], entry, default, false, _class[i], ms - created);
                switch (r.Kind)
                {
                    case SyncPolicyKind.Full:
                        announcedAtMs[i] = ms;
                        decidedDelayMs[i] = Rounded((int)(ms - created));
                        break;
                    case SyncPolicyKind.Delayed:
                        decidedDelayMs[i] = Rounded((int)(ms - created + r.DelayMs));
                        Schedule(i, 1, created + Math.Max(ms - created + 1, decidedDelayMs[i]), ToMs(_records[i].EndUnixSeconds));
                        break;
                    default:
                        decidedDelayMs[i] = -1;
                        break;
                }

                return;
            }

            bool synced = announcedAtMs[i] < ms;
            var outcome = new ConnectionOutcome(_keys[i], _class[i], created, ms, ConnectionEndReason.Destroyed, synced,
                decidedDelayMs[i], score[i], synced ? PolicySimulator.MessagesPerSync : 0, StateOf(_records[i].Protocol), default, false);
            controller.OnEnded(outcome);
            tap?.OnEnded(outcome);
        }
    }

    // Replayed connections are established (TCP) or replied (UDP): the trace knows nothing of their state at the checkpoint.
    private static ProtocolState StateOf(byte protocol) => protocol switch
    {
        6 => ProtocolState.TcpEstablished,
        17 => ProtocolState.UdpReplied,
        _ => ProtocolState.None,
    };

    /// <summary>A delay as the engine applies it: rounded to its one-byte grid (<see cref="DelayGrid"/>, 7 % steps).</summary>
    private static int Rounded(int delayMs) => DelayGrid.Decode(DelayGrid.Encode(delayMs));

    private static long ToMs(double unixSeconds) => (long)Math.Round(unixSeconds * 1000);

    /// <summary>The trace's first start (milliseconds since 1970): where a replay's virtual clock starts.</summary>
    public long StartMs => _startMs;
}

/// <summary>
/// Connection templates in a controller replay (<see cref="ControllerReplay.Run(string, AdaptiveOptions, ILifetimePredictor?, TimeSpan, List{ReplayDecision}?, IConnectionOutcomeSink?, ReplayCover?, TextWriter?)"/>),
/// indexed in start order: which connections a live template covered at their start (in), each one's unreplicated
/// seconds and the covered delayed connections left unsynchronized (out).
/// </summary>
internal sealed class ReplayCover(int connections)
{
    public bool[] CoveredAtStart { get; } = new bool[connections];

    public double[] UnprotectedSeconds { get; } = new double[connections];

    public long Unsynced { get; set; }
}

/// <summary>A <see cref="TimeProvider"/> that reads a virtual-time scheduler's clock: one clock for the controller's time and its Rx buffers.</summary>
internal sealed class SchedulerTimeProvider(HistoricalScheduler scheduler) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => scheduler.Now;
}
