using System.CommandLine;
using System.Globalization;
using ClusterSync.Training;
using ClusterSync.Workload.Trace;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync train --luflow DIR --trace FILE ... [--name N] [--out-dir models] [--force]</c>: trains the lifetime model,
/// evaluates it on the latest days against the static policies, writes models/N.zip, N.md and PNG plots. An existing
/// models/N.zip is replaced only with <c>--force</c> (exit 2 otherwise, before any training).
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var luflow = new Option<string[]>("--luflow") { Description = "LUFlow zip, CSV or directory (repeatable).", AllowMultipleArgumentsPerToken = true };
        var trace = new Option<string[]>("--trace") { Description = "Trace CSV, e.g. from 'clustersync generate' (repeatable).", AllowMultipleArgumentsPerToken = true };
        var zeek = new Option<string[]>("--zeek") { Description = "Zeek conn.log (repeatable).", AllowMultipleArgumentsPerToken = true };
        var name = new Option<string>("--name") { Description = "Model name: writes <out-dir>/<name>.zip, .md, .frontier.png, .calibration.png.", DefaultValueFactory = _ => "lifetime" };
        var outDir = new Option<string>("--out-dir") { Description = "Output directory.", DefaultValueFactory = _ => "models" };
        var testDays = new Option<int>("--test-days") { Description = "Latest UTC days held out for evaluation (0: 30 % of the days)." };
        var calDays = new Option<int>("--calibration-days") { Description = "Days before the test days that calibrate the score.", DefaultValueFactory = _ => 1 };
        var trees = new Option<int>("--trees") { Description = "FastTree trees.", DefaultValueFactory = _ => 100 };
        var leaves = new Option<int>("--leaves") { Description = "Leaves per tree.", DefaultValueFactory = _ => 32 };
        var noPlots = new Option<bool>("--no-plots") { Description = "Skip the PNG plots." };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing model <out-dir>/<name>.zip (and its card and plots)." };
        var command = new Command("train", "Train the lifetime model from traces (split by time), evaluate against static policies, write model + card + plots.")
        {
            luflow, trace, zeek, name, outDir, testDays, calDays, trees, leaves, noPlots, force,
        };
        command.SetAction(parse =>
        {
            var sources = new List<TrainingSource>();
            sources.AddRange((parse.GetValue(luflow) ?? []).Select(p => new TrainingSource(p, TraceFormat.Luflow)));
            sources.AddRange((parse.GetValue(trace) ?? []).Select(p => new TrainingSource(p, TraceFormat.Trace)));
            sources.AddRange((parse.GetValue(zeek) ?? []).Select(p => new TrainingSource(p, TraceFormat.Zeek)));
            var errors = new List<string>();
            if (sources.Count == 0)
            {
                errors.Add("--luflow/--trace/--zeek: expected at least one training source");
            }

            var n = parse.GetValue(name)!;
            if (n.Length == 0 || n.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || n.Contains('/', StringComparison.Ordinal))
            {
                errors.Add($"--name: expected a file name without directories, found '{n}'");
            }

            int t = parse.GetValue(trees), l = parse.GetValue(leaves);
            if (t is < 1 or > 5000)
            {
                errors.Add($"--trees: expected 1-5000, found {t}");
            }

            if (l is < 2 or > 1024)
            {
                errors.Add($"--leaves: expected 2-1024, found {l}");
            }

            foreach (var (option, path) in sources.Select(s => (s.Format switch { TraceFormat.Luflow => "--luflow", TraceFormat.Zeek => "--zeek", _ => "--trace" }, s.Path)))
            {
                if (!File.Exists(path) && !Directory.Exists(path))
                {
                    errors.Add($"{option}: no such file or directory '{Path.GetFullPath(path)}'");
                }
            }

            var outputDirectory = parse.GetValue(outDir)!;
            if (string.IsNullOrWhiteSpace(outputDirectory) || File.Exists(outputDirectory))
            {
                errors.Add($"--out-dir: expected a directory to write the model into, found '{outputDirectory}'");
            }
            else if (errors.Count == 0 && Path.Combine(Path.GetFullPath(outputDirectory), n + ".zip") is var modelPath && File.Exists(modelPath) && !parse.GetValue(force))
            {
                // A running node may watch this very file (adaptive.model): never replace a model by accident.
                errors.Add($"{modelPath}: the model exists; pass --force to overwrite it (a node watching it reloads the new one)");
            }

            if (errors.Count > 0)
            {
                throw ConfigurationErrors.All(errors);
            }

            var options = new TrainingRunOptions
            {
                Name = n,
                Sources = sources,
                OutputDirectory = outputDirectory,
                TestDays = parse.GetValue(testDays),
                CalibrationDays = parse.GetValue(calDays),
                Trainer = new TrainerOptions { Trees = t, Leaves = l },
                Plots = !parse.GetValue(noPlots),
                CommandLine = "clustersync " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            };
            TrainingRunResult? result = null;
            AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("train", maxValue: 1.0);
                    result = TrainingRun.Run(options, (stage, fraction) =>
                    {
                        task.Description = Markup.Escape(stage);
                        task.Value = fraction;
                    });
                });
            var r = result!;
            Console.WriteLine($"split: {r.Split.Description}");
            Console.WriteLine($"trained in {r.TrainTime.TotalSeconds:0.0} s; wrote {r.ModelPath}, {r.CardPath}{string.Concat(r.PlotPaths.Select(p => ", " + p))}");
            Console.WriteLine(ModelCard.PolicyTable(r.TestReport.Policies));
            Console.WriteLine(ModelCard.FrontierTable(r.Reads));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"adaptive at static-3s messages: {r.Reads.AdaptiveExposureRatio:P1} of its exposure (target ≤ 50 %: {(r.Reads.ExposureTargetMet ? "met" : "NOT met")}); at static-3s exposure: {r.Reads.AdaptiveMessagesRatio:P1} of its messages ({(r.Reads.MessagesTargetMet ? "met" : "NOT met")})"));
            return CommandLine.Success;
        });
        return command;
    }
}
