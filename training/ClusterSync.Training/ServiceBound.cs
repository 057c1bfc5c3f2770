using System.Globalization;
using ClusterSync.Adaptive.Model;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>One point of the <c>best-per-service</c> reference: what the best per-service rule sends and exposes.</summary>
/// <param name="Messages">2 per synchronized connection (fractional where the binding service mixes two delays).</param>
/// <param name="Price">The Lagrange price (exposure seconds per synchronized connection) at which the constraint binds.</param>
/// <param name="MixedService">The service whose connections are split between two delays, as "proto/port" (empty: none).</param>
public sealed record ServiceBoundPoint(double Messages, double Bytes, double ExposureSeconds, double Price, string MixedService);

/// <summary>The <c>best-per-service</c> reference at static 3 s's messages and at its exposure.</summary>
/// <param name="Services">Services (protocol × lower port) with at least <see cref="ServiceBound.MinConnections"/> connections.</param>
/// <param name="PooledConnections">Connections of rarer ports, pooled into one service per protocol.</param>
public sealed record ServiceBoundResult(int Services, long PooledConnections, ServiceBoundPoint AtMessages, ServiceBoundPoint AtExposure);

/// <summary>
/// <c>best-per-service</c> — a reference, not a policy: like the oracle it is computed in-sample, from the very
/// lifetimes it is judged on. It knows each service's (protocol × lower port, the controller's service key) lifetime
/// distribution on the trace exactly and gives every connection of a service one delay of the model's grid, chosen at
/// one price λ (the delay minimizing <c>λ · syncs + exposure</c> over the service's connections), with λ swept until
/// the messages (or the exposure) meet static 3 s's; at the one service where the constraint binds, a share of its
/// connections takes the next delay (the Lagrangian optimum of the relaxed problem, so no per-service rule over this
/// grid does better at that constraint). Where lifetimes depend on nothing known at start but the service (the
/// generator: service × server port), this is the best any start-time rule over the grid can do; on real traces it
/// bounds rules that know only the service. Ports seen on fewer than <see cref="MinConnections"/> connections
/// (scanners, ephemeral pairs) are pooled into one service per protocol.
/// </summary>
public static class ServiceBound
{
    public const int MinConnections = 20;

    public static ServiceBoundResult Compute(IReadOnlyList<TraceRecord> records, double targetMessages, double targetExposure)
    {
        ArgumentNullException.ThrowIfNull(records);
        var grid = LifetimeModel.DelayGrid;
        int g = grid.Count;
        var counts = new Dictionary<(byte, int), int>();
        foreach (var r in records)
        {
            var k = Key(r);
            counts[k] = counts.GetValueOrDefault(k) + 1;
        }

        // Per service and grid delay: syncs, exposure, bytes.
        var index = new Dictionary<(byte, int), int>();
        var syncs = new List<double[]>();
        var exposure = new List<double[]>();
        var bytes = new List<double[]>();
        var names = new List<string>();
        long pooled = 0;
        foreach (var r in records)
        {
            var k = Key(r);
            if (counts[k] < MinConnections)
            {
                pooled++;
                k = (k.Item1, -1);
            }

            if (!index.TryGetValue(k, out int s))
            {
                s = index[k] = syncs.Count;
                syncs.Add(new double[g]);
                exposure.Add(new double[g]);
                bytes.Add(new double[g]);
                names.Add(k.Item2 < 0 ? string.Create(CultureInfo.InvariantCulture, $"{k.Item1}/rare") : string.Create(CultureInfo.InvariantCulture, $"{k.Item1}/{k.Item2}"));
            }

            double l = r.DurationSeconds;
            int b = PolicySimulator.SyncBytes(r);
            for (int i = 0; i < g; i++)
            {
                if (l > grid[i])
                {
                    syncs[s][i]++;
                    bytes[s][i] += b;
                    exposure[s][i] += grid[i];
                }
                else
                {
                    exposure[s][i] += l;
                }
            }
        }

        // Each service's lower convex hull over its (syncs, exposure) points: the delays some price chooses.
        var start = new (double Syncs, double Exposure, double Bytes)[syncs.Count];
        var steps = new List<Step>();
        for (int s = 0; s < syncs.Count; s++)
        {
            var hull = Hull(syncs[s], exposure[s], bytes[s]);
            start[s] = hull[0];
            for (int h = 1; h < hull.Count; h++)
            {
                double ds = hull[h].Syncs - hull[h - 1].Syncs;
                double de = hull[h - 1].Exposure - hull[h].Exposure;
                steps.Add(new Step(s, h, de / ds, ds, de, hull[h].Bytes - hull[h - 1].Bytes));
            }
        }

        // Lowering λ from ∞: every service moves to its next hull vertex when λ falls below that step's exposure saved
        // per extra sync. Within a service those rates fall along the hull, so one global order is the whole sweep.
        steps.Sort(static (a, b) => b.Rate != a.Rate ? b.Rate.CompareTo(a.Rate) : a.Service != b.Service ? a.Service.CompareTo(b.Service) : a.Vertex.CompareTo(b.Vertex));
        double s0 = start.Sum(p => p.Syncs), e0 = start.Sum(p => p.Exposure), b0 = start.Sum(p => p.Bytes);
        var atMessages = Walk(steps, s0, e0, b0, names, (syncsNow, _, step) => (syncsNow + step.Syncs) * PolicySimulator.MessagesPerSync <= targetMessages
            ? 1 : Math.Max(0, ((targetMessages / PolicySimulator.MessagesPerSync) - syncsNow) / step.Syncs));
        var atExposure = Walk(steps, s0, e0, b0, names, (_, exposureNow, step) => exposureNow <= targetExposure
            ? 0 : exposureNow - step.Exposure >= targetExposure ? 1 : (exposureNow - targetExposure) / step.Exposure);
        return new ServiceBoundResult(index.Keys.Count(k => k.Item2 >= 0), pooled, atMessages, atExposure);
    }

    /// <summary>
    /// Takes the steps in order while <paramref name="share"/> (of the next step; 1 = all of it) says so: the first step
    /// taken only in part is where the constraint binds, and its service mixes two delays.
    /// </summary>
    private static ServiceBoundPoint Walk(List<Step> steps, double syncs, double exposure, double bytes, List<string> names,
        Func<double, double, Step, double> share)
    {
        double price = double.PositiveInfinity;
        foreach (var step in steps)
        {
            double f = Math.Clamp(share(syncs, exposure, step), 0, 1);
            if (f <= 0)
            {
                return new ServiceBoundPoint(syncs * PolicySimulator.MessagesPerSync, bytes, exposure, price, "");
            }

            syncs += f * step.Syncs;
            exposure -= f * step.Exposure;
            bytes += f * step.Bytes;
            price = step.Rate;
            if (f < 1)
            {
                return new ServiceBoundPoint(syncs * PolicySimulator.MessagesPerSync, bytes, exposure, price, names[step.Service]);
            }
        }

        return new ServiceBoundPoint(syncs * PolicySimulator.MessagesPerSync, bytes, exposure, price, "");
    }

    /// <summary>The lower convex hull of one service's grid points, from the fewest syncs (never) to the most (now).</summary>
    private static List<(double Syncs, double Exposure, double Bytes)> Hull(double[] syncs, double[] exposure, double[] bytes)
    {
        var points = Enumerable.Range(0, syncs.Length).Select(i => (Syncs: syncs[i], Exposure: exposure[i], Bytes: bytes[i]))
            .OrderBy(p => p.Syncs).ThenBy(p => p.Exposure).ToList();
        var hull = new List<(double Syncs, double Exposure, double Bytes)>();
        foreach (var p in points)
        {
            if (hull.Count > 0 && p.Exposure >= hull[^1].Exposure)
            {
                continue; // more syncs for no less exposure: never chosen
            }

            while (hull.Count >= 2 && Cross(hull[^2], hull[^1], p) <= 0)
            {
                hull.RemoveAt(hull.Count - 1);
            }

            hull.Add(p);
        }

        return hull;
    }

    private static double Cross((double Syncs, double Exposure, double Bytes) o, (double Syncs, double Exposure, double Bytes) a, (double Syncs, double Exposure, double Bytes) b)
        => ((a.Syncs - o.Syncs) * (b.Exposure - o.Exposure)) - ((a.Exposure - o.Exposure) * (b.Syncs - o.Syncs));

    /// <summary>The controller's service key: protocol × the lower port.</summary>
    private static (byte, int) Key(in TraceRecord r) => (r.Protocol, Math.Min(r.SourcePort, r.DestinationPort));

    private readonly record struct Step(int Service, int Vertex, double Rate, double Syncs, double Exposure, double Bytes);
}
