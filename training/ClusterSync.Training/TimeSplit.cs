using ClusterSync.Workload.Trace;

namespace ClusterSync.Training;

/// <summary>
/// A split by time, never by random rows: the earliest days train the trees, the next day(s) calibrate the score
/// buckets, the latest days evaluate. With fewer than three UTC days in the data, the span is cut by time at
/// 60 % / 80 % instead.
/// </summary>
public sealed record TimeSplit(IReadOnlyList<TraceRecord> Train, IReadOnlyList<TraceRecord> Calibration, IReadOnlyList<TraceRecord> Test, string Description)
{
    public static TimeSplit ByDays(IReadOnlyList<TraceRecord> sortedByStart, int testDays, int calibrationDays)
    {
        if (sortedByStart.Count == 0)
        {
            throw ConfigurationErrors.At("training data", "expected connections, found none");
        }

        var days = sortedByStart.Select(r => Day(r.StartUnixSeconds)).Distinct().Order().ToArray();
        if (days.Length >= 3)
        {
            testDays = Math.Clamp(testDays <= 0 ? Math.Max(1, days.Length * 3 / 10) : testDays, 1, days.Length - 2);
            calibrationDays = Math.Clamp(calibrationDays, 1, days.Length - testDays - 1);
            long firstTest = days[^testDays];
            long firstCal = days[^(testDays + calibrationDays)];
            var train = sortedByStart.Where(r => Day(r.StartUnixSeconds) < firstCal).ToList();
            var cal = sortedByStart.Where(r => Day(r.StartUnixSeconds) >= firstCal && Day(r.StartUnixSeconds) < firstTest).ToList();
            var test = sortedByStart.Where(r => Day(r.StartUnixSeconds) >= firstTest).ToList();
            string D(IEnumerable<long> ds) => string.Join(", ", ds.Select(d => DateOnly.FromDayNumber((int)(d + 719_162)).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)));
            return new TimeSplit(train, cal, test,
                $"by UTC day: train {days.Length - testDays - calibrationDays} day(s) [{D(days[..^(testDays + calibrationDays)])}], calibrate {calibrationDays} [{D(days[^(testDays + calibrationDays)..^testDays])}], test {testDays} [{D(days[^testDays..])}]");
        }

        double t0 = sortedByStart[0].StartUnixSeconds;
        double t1 = sortedByStart[^1].StartUnixSeconds;
        double a = t0 + (0.6 * (t1 - t0)), b = t0 + (0.8 * (t1 - t0));
        return new TimeSplit(
            sortedByStart.Where(r => r.StartUnixSeconds < a).ToList(),
            sortedByStart.Where(r => r.StartUnixSeconds >= a && r.StartUnixSeconds < b).ToList(),
            sortedByStart.Where(r => r.StartUnixSeconds >= b).ToList(),
            "by time (fewer than 3 days): first 60 % of the span trains, next 20 % calibrates, last 20 % tests");
    }

    private static long Day(double unixSeconds) => (long)Math.Floor(unixSeconds / 86_400.0);
}
