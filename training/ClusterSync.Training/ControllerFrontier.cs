namespace ClusterSync.Training;

/// <summary>The controller-in-the-loop points that answer "does adaptive beat static 3 s here?".</summary>
/// <param name="Sweep">Every replay run, by budget.</param>
/// <param name="AtStaticMessages">The least-exposure replay sending no more messages than static 3 s (null: none does).</param>
/// <param name="AtStaticExposure">The fewest-messages replay exposing no more than static 3 s (null: none does).</param>
public sealed record ControllerFrontierResult(IReadOnlyList<ReplayResult> Sweep, ReplayResult? AtStaticMessages, ReplayResult? AtStaticExposure);

/// <summary>
/// Finds the frontier points by replaying the trace through the controller at operator budgets: a log-spaced sweep,
/// then bisection on the budget between the sweep points that bracket static 3 s's messages and its exposure. The
/// budget is the only knob, as in a node; the points are what a node given that budget would have done.
/// </summary>
internal static class ControllerFrontier
{
    public const double MinBudget = 1e-4;
    public const double MaxBudget = 0.5;

    public static ControllerFrontierResult Search(Func<double, ReplayResult> run, long staticMessages, double staticExposure, int sweepPoints = 10, int refine = 4)
    {
        var runs = new Dictionary<double, ReplayResult>();
        ReplayResult At(double b)
        {
            if (!runs.TryGetValue(b, out var r))
            {
                r = run(b);
                runs[b] = r;
            }

            return r;
        }

        var budgets = Enumerable.Range(0, sweepPoints).Select(i => Math.Exp(Math.Log(MinBudget) + ((Math.Log(MaxBudget) - Math.Log(MinBudget)) * i / (sweepPoints - 1)))).ToList();
        foreach (var b in budgets)
        {
            At(b);
        }

        // Messages fall and exposure rises with the budget (up to the feedback loop's noise): bisect between the
        // largest sweep budget that sends more than static and the next one; likewise for exposure.
        Refine(budgets, r => r.Messages <= staticMessages);
        Refine(budgets, r => r.ExposureSeconds <= staticExposure);

        var all = runs.Values.OrderBy(r => r.Budget).ToList();
        var atMessages = all.Where(r => r.Messages <= staticMessages).OrderBy(r => r.ExposureSeconds).FirstOrDefault();
        var atExposure = all.Where(r => r.ExposureSeconds <= staticExposure).OrderBy(r => r.Messages).FirstOrDefault();
        return new ControllerFrontierResult(all, atMessages, atExposure);

        void Refine(List<double> sweep, Func<ReplayResult, bool> feasibleWhenCheaper)
        {
            // For messages: feasible at large budgets; for exposure: feasible at small budgets. Find a neighbouring pair
            // that differs and bisect in log space.
            for (int i = 0; i + 1 < sweep.Count; i++)
            {
                double lo = sweep[i], hi = sweep[i + 1];
                bool a = feasibleWhenCheaper(At(lo)), c = feasibleWhenCheaper(At(hi));
                if (a == c)
                {
                    continue;
                }

                for (int k = 0; k < refine; k++)
                {
                    double mid = Math.Sqrt(lo * hi);
                    if (feasibleWhenCheaper(At(mid)) == a)
                    {
                        lo = mid;
                    }
                    else
                    {
                        hi = mid;
                    }
                }
            }
        }
    }
}
