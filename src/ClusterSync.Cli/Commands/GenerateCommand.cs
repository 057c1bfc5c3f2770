using System.CommandLine;
using System.Globalization;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Cli.Commands;

/// <summary><c>clustersync generate --out FILE ...</c>: a seeded synthetic trace (docs/trace-format.md).</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var output = new Option<FileInfo>("--out", "-o") { Description = "Trace CSV to write.", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed: the same options give the same trace.", DefaultValueFactory = _ => 1 };
        var days = new Option<double>("--days") { Description = "Length of the trace in days.", DefaultValueFactory = _ => 1 };
        var rate = new Option<double>("--rate") { Description = "Mean new connections per second over a day (bursts not counted).", DefaultValueFactory = _ => 5 };
        var diurnal = new Option<double>("--diurnal") { Description = "Diurnal amplitude in [0, 1): the rate swings between (1-a) and (1+a) times the mean.", DefaultValueFactory = _ => 0.5 };
        var bursts = new Option<double>("--bursts-per-hour") { Description = "Scanner sweeps and connection bursts per hour.", DefaultValueFactory = _ => 6 };
        var start = new Option<string>("--start") { Description = "UTC start, e.g. 2026-01-05 or 2026-01-05T08:00:00Z.", DefaultValueFactory = _ => "2026-01-05" };
        var command = new Command("generate", "Write a synthetic connection trace: service mix, heavy-tailed lifetimes, diurnal rate, bursts.")
        {
            output, seed, days, rate, diurnal, bursts, start,
        };
        command.SetAction(parse =>
        {
            var outPath = PathOptions.OutputFile("--out", parse.GetValue(output)!.FullName);
            var startText = parse.GetValue(start)!;
            if (!DateTimeOffset.TryParse(startText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var startAt))
            {
                Console.Error.WriteLine($"clustersync: --start: expected a UTC date or time like 2026-01-05 or 2026-01-05T08:00:00Z, found '{startText}'");
                return CommandLine.BadInput;
            }

            var options = new TraceGeneratorOptions
            {
                Seed = parse.GetValue(seed),
                SpanSeconds = parse.GetValue(days) * 86_400,
                ConnectionsPerSecond = parse.GetValue(rate),
                DiurnalAmplitude = parse.GetValue(diurnal),
                BurstsPerHour = parse.GetValue(bursts),
                StartUnixSeconds = startAt.ToUnixTimeMilliseconds() / 1000.0,
            };
            // The generator's own check speaks of its span in seconds; the user typed --days.
            var errors = options.Validate().Where(e => !e.StartsWith("--span:", StringComparison.Ordinal)).ToList();
            double d = parse.GetValue(days);
            if (!(d > 0 && d <= 366))
            {
                errors.Insert(0, $"--days: expected days in (0, 366], found {d.ToString(CultureInfo.InvariantCulture)}");
            }

            if (errors.Count > 0)
            {
                throw ConfigurationErrors.All(errors);
            }

            var trace = TraceGenerator.Generate(options);
            TraceCsv.Write(outPath, trace);
            Console.WriteLine($"wrote {outPath}: {trace.Count:N0} connections over {options.SpanSeconds / 86_400:0.##} day(s), seed {options.Seed}");
            return CommandLine.Success;
        });
        return command;
    }
}
