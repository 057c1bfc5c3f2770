using System.CommandLine;
using ClusterSync.Telemetry;

namespace ClusterSync.Cli.Commands;

/// <summary><c>clustersync telemetry export --db FILE --out FILE.csv [--metrics FILE.csv]</c>: a node's telemetry as CSV.</summary>
internal static class TelemetryCommand
{
    public static Command Create()
    {
        var db = new Option<FileInfo>("--db") { Description = "The node's telemetry file (telemetry.path).", Required = true };
        var output = new Option<FileInfo>("--out", "-o") { Description = "Where to write the lifecycle CSV (one connection per line).", Required = true };
        var metrics = new Option<FileInfo?>("--metrics") { Description = "Also write the periodic sync metrics as CSV (one class per interval per line)." };
        var format = new Option<string>("--format") { Description = "lifecycle (every captured field) or trace (the trace CSV that 'train --trace' and 'simulate' read).", DefaultValueFactory = _ => "lifecycle" };
        var export = new Command("export", "Write captured connection lifecycles (and optionally sync metrics) as CSV for training.") { db, output, format, metrics };
        export.SetAction(parse =>
        {
            var dbFile = parse.GetValue(db)!;
            var outFile = parse.GetValue(output)!;
            var metricsFile = parse.GetValue(metrics);
            var fmt = parse.GetValue(format);
            if (fmt is not ("lifecycle" or "trace"))
            {
                Console.Error.WriteLine($"clustersync: --format: expected 'lifecycle' or 'trace', found '{fmt}'");
                return CommandLine.BadInput;
            }
            if (!dbFile.Exists)
            {
                Console.Error.WriteLine($"clustersync: {dbFile.FullName}: --db: no such telemetry file; expected the node's telemetry.path");
                return CommandLine.BadInput;
            }

            PathOptions.OutputFile("--out", outFile.FullName);
            if (metricsFile is not null)
            {
                PathOptions.OutputFile("--metrics", metricsFile.FullName);
            }

            // Throws ConfigurationException (exit 2) when the file is not a telemetry file.
            using var reader = new TelemetryReader(dbFile.FullName);
            long records;
            using (var w = new StreamWriter(outFile.FullName))
            {
                records = fmt == "trace" ? reader.ExportTrace(w) : reader.ExportLifecycles(w);
            }

            Console.WriteLine($"wrote {records:N0} connection lifecycles to {outFile.FullName}");
            if (metricsFile is not null)
            {
                using var w = new StreamWriter(metricsFile.FullName);
                long lines = reader.ExportMetrics(w);
                Console.WriteLine($"wrote {lines:N0} metrics lines to {metricsFile.FullName}");
            }

            return CommandLine.Success;
        });
        return new Command("telemetry", "Telemetry captured by a node (telemetry.enabled).") { export };
    }
}
