using System.Globalization;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Adaptive.Model;
using ClusterSync.Policy;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>A static policy's cost and exposure over a trace without and with connection templates (docs/templates.md).</summary>
/// <param name="Name">The policy: <c>sync-all</c>, <c>static-3s</c>, <c>static-30s</c>, <c>never</c>.</param>
/// <param name="Messages">Records without templates: 2 per announced connection.</param>
/// <param name="ExposureSeconds">Σ min(lifetime, delay) without templates.</param>
/// <param name="MessagesWithTemplates">Records with templates: the same connections announced (a template does not change a static policy), plus <paramref name="TemplateMessages"/>.</param>
/// <param name="ExposureSecondsWithTemplates">Exposure left with templates: the part of each connection's unprotected time that no live template covered.</param>
/// <param name="TemplateMessages">Template records: one at each creation and one per keep-alive (half a lifetime apart while the shape keeps coming).</param>
/// <param name="TemplatesCreated">Templates made.</param>
/// <param name="Covered">Connections a live template covered when they started.</param>
public sealed record TemplatePolicyResult(
    string Name,
    long Messages,
    double ExposureSeconds,
    long MessagesWithTemplates,
    double ExposureSecondsWithTemplates,
    long TemplateMessages,
    long TemplatesCreated,
    long Covered)
{
    /// <summary>Share of the policy's exposure the templates removed.</summary>
    public double ExposureRemovedShare => ExposureSeconds > 0 ? 1 - (ExposureSecondsWithTemplates / ExposureSeconds) : 0;
}

/// <summary>The template settings a replay uses (the defaults of a class's <c>templates</c> block).</summary>
public sealed record TemplateReplayOptions(int Threshold = 20, double WindowSeconds = 10, double LifetimeSeconds = 60);

/// <summary>
/// Replays a trace's connection starts through the engine's template rules (TemplateTracker): per shape (source,
/// destination, destination port, protocol; TCP, UDP, SCTP only) <c>threshold</c> starts within the window make a
/// template, each later start keeps it alive, and the owner sends it again once half its lifetime has passed since
/// it last sent it; a replica's copy expires a lifetime after the last record sent. A connection's unprotected time
/// (min(lifetime, delay)) counts as exposed only where no template of its shape was live in the replicas' view (a
/// failover then picks it up: the in-process sink accepts any connection of a live template's shape). Static policies
/// still announce every connection that outlives its delay, as the engine does.
/// </summary>
public static class TemplateReplay
{
    /// <summary>
    /// The static policies, and with <paramref name="adaptiveBudget"/> the node's controller (<see cref="ControllerReplay"/>,
    /// one class delayed 3 s as <c>simulate</c> replays it) at that budget: without templates exactly as the replay
    /// counted; with them the controller replays the trace again as a node with templates runs it — a covered
    /// connection it delays at its start is left unsynchronized (the engine's rule: no revision, a never-synced outcome
    /// fed back to the controller) — and each connection's unreplicated time counts only where no template covered it.
    /// </summary>
    public static IReadOnlyList<TemplatePolicyResult> Run(IReadOnlyList<TraceRecord> records, TemplateReplayOptions options,
        double? adaptiveBudget = null, LifetimeModel? model = null, TimeSpan warmup = default, bool guard = true)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(options);
        var order = Enumerable.Range(0, records.Count).OrderBy(i => records[i].StartUnixSeconds).ToArray();
        var coveredAtStart = new bool[records.Count];
        var shapeOf = new Shape?[records.Count];
        var shapes = new Dictionary<(string, string, ushort, byte), Shape>();
        long templateMessages = 0, created = 0, covered = 0;
        double lifetime = options.LifetimeSeconds;
        foreach (int i in order)
        {
            var r = records[i];
            if (r.Protocol is not (6 or 17 or 132))
            {
                continue;
            }

            double t = r.StartUnixSeconds;
            var key = (r.SourceAddress, r.DestinationAddress, r.DestinationPort, r.Protocol);
            if (!shapes.TryGetValue(key, out var s))
            {
                shapes[key] = s = new Shape();
            }

            shapeOf[i] = s;
            if (s.Live && t < s.OwnerUpdated + lifetime)
            {
                s.OwnerUpdated = Math.Max(s.OwnerUpdated, t);
                if (t - s.LastSent >= lifetime / 2)
                {
                    if (t > s.LastSent + lifetime)
                    {
                        s.Close(lifetime); // the replicas' copy expired before this keep-alive: a gap in their cover
                        s.From = t;
                    }

                    s.LastSent = t;
                    templateMessages++;
                }

                coveredAtStart[i] = true;
                covered++;
                continue;
            }

            if (s.Live)
            {
                s.Close(lifetime);
                s.Live = false;
            }

            if (s.Count == 0 || t - s.WindowStart > options.WindowSeconds)
            {
                s.WindowStart = t;
                s.Count = 0;
            }

            if (++s.Count >= options.Threshold)
            {
                s.Live = true;
                s.Count = 0;
                s.OwnerUpdated = s.LastSent = s.From = t;
                templateMessages++;
                created++;
            }
        }

        foreach (var s in shapes.Values.Where(s => s.Live))
        {
            s.Close(lifetime);
        }

        // Σ over the connections of the time in [start, start + u) that a live template of their shape covered (the
        // replicas' view: from its creation to a lifetime after the last record sent), whenever it was made.
        double CoveredPart(int i, double u) => shapeOf[i] is { } s && u > 0 ? s.Overlap(records[i].StartUnixSeconds, records[i].StartUnixSeconds + u) : 0;

        var results = new List<TemplatePolicyResult>
        {
            Evaluate("sync-all", records, CoveredPart, 0, templateMessages, created, covered),
            Evaluate("static-3s", records, CoveredPart, 3, templateMessages, created, covered),
            Evaluate("static-30s", records, CoveredPart, 30, templateMessages, created, covered),
            Evaluate("never", records, CoveredPart, double.PositiveInfinity, templateMessages, created, covered),
        };
        if (adaptiveBudget is { } budget)
        {
            results.Add(Adaptive(records, order, coveredAtStart, CoveredPart, budget, model, warmup, guard, templateMessages, created, covered));
        }

        return results;
    }

    private static TemplatePolicyResult Adaptive(IReadOnlyList<TraceRecord> records, int[] order, bool[] coveredAtStart, Func<int, double, double> coveredPart,
        double budget, LifetimeModel? model, TimeSpan warmup, bool guard, long templateMessages, long created, long covered)
    {
        // The replay orders the records by start as `order` does (both stable), so its j-th connection is record order[j].
        var replay = new ControllerReplay(records, ControllerReplay.UniformPolicy(3));
        string name = $"adaptive@{budget.ToString("0.#####", CultureInfo.InvariantCulture)}";
        var options = new AdaptiveOptions { LossBudget = budget, Guard = guard };
        var without = replay.Run(name, options, model is null ? null : new LifetimeModelPredictor(model), warmup);

        // With templates the controller runs again as a node's would: a covered connection it delays at its start is
        // left unsynchronized (never revised; its outcome reaches the controller as never synced, so its feedback and
        // budget see what the node's see), and whatever time a connection stays unreplicated counts as exposed only where
        // no template of its shape was live.
        var cover = new ReplayCover(order.Length);
        for (int j = 0; j < order.Length; j++)
        {
            cover.CoveredAtStart[j] = coveredAtStart[order[j]];
        }

        var with = replay.Run(name, options, model is null ? null : new LifetimeModelPredictor(model), warmup, cover: cover);
        double exposure = 0;
        for (int j = 0; j < order.Length; j++)
        {
            double u = cover.UnprotectedSeconds[j];
            exposure += Math.Max(0, u - coveredPart(order[j], u));
        }

        return new TemplatePolicyResult(name, without.Messages, without.ExposureSeconds, with.Messages + templateMessages, exposure,
            templateMessages, created, covered);
    }

    private static TemplatePolicyResult Evaluate(string name, IReadOnlyList<TraceRecord> records, Func<int, double, double> coveredPart, double delay,
        long templateMessages, long created, long covered)
    {
        long messages = 0;
        double exposure = 0, left = 0;
        for (int i = 0; i < records.Count; i++)
        {
            double l = records[i].DurationSeconds;
            if (l > delay)
            {
                messages += PolicySimulator.MessagesPerSync;
            }

            double unprotected = Math.Min(l, delay);
            exposure += unprotected;
            left += Math.Max(0, unprotected - coveredPart(i, unprotected));
        }

        return new TemplatePolicyResult(name, messages, exposure, messages + templateMessages, left, templateMessages, created, covered);
    }

    private sealed class Shape
    {
        private readonly List<(double From, double To)> _covered = [];

        public bool Live;
        public int Count;
        public double WindowStart;
        public double OwnerUpdated;
        public double LastSent;
        public double From;

        /// <summary>Ends the current stretch of cover: from <see cref="From"/> to a lifetime after the last record sent.</summary>
        public void Close(double lifetime) => _covered.Add((From, LastSent + lifetime));

        /// <summary>Seconds of [<paramref name="from"/>, <paramref name="to"/>) inside the stretches of cover (they are in time order).</summary>
        public double Overlap(double from, double to)
        {
            int lo = 0, hi = _covered.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) / 2;
                if (_covered[mid].To <= from)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            double sum = 0;
            for (int k = lo; k < _covered.Count && _covered[k].From < to; k++)
            {
                sum += Math.Max(0, Math.Min(to, _covered[k].To) - Math.Max(from, _covered[k].From));
            }

            return sum;
        }
    }
}
