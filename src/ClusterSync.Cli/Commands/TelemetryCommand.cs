using System.CommandLine;
using ClusterSync.Telemetry;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync telemetry export (--db FILE | --endpoint URL) --out FILE.csv [--metrics FILE.csv]</c>: a node's
/// telemetry as CSV, from its file (a stopped node, or a copy) or from the running node itself (a consistent export).
/// </summary>
internal static class TelemetryCommand
{
    public static Command Create()
    {
        var db = new Option<FileInfo?>("--db") { Description = "The node's telemetry file (telemetry.path) of a stopped node; a running node: --endpoint." };
        var endpoint = new Option<string?>("--endpoint") { Description = "A running node's control endpoint (http://127.0.0.1:9116): the node exports from the database it writes, so nothing is torn or lost by copying a file in use." };
        var tokenFile = new Option<string?>("--token-file") { Description = "With --endpoint: the node's control token file, when it sets node.control.requireTokenForReads." };
        var caFile = new Option<string?>("--ca-file")
        {
            Description = "With an https --endpoint: the certificate (PEM) that signed the node's certificate, or the node's own self-signed one; default: the system's trusted roots.",
        };
        var output = new Option<FileInfo>("--out", "-o") { Description = "Where to write the lifecycle CSV (one connection per line).", Required = true };
        var metrics = new Option<FileInfo?>("--metrics") { Description = "Also write the periodic sync metrics as CSV (one class per interval per line)." };
        var format = new Option<string>("--format") { Description = "lifecycle (every captured field) or trace (the trace CSV that 'train --trace' and 'simulate' read).", DefaultValueFactory = _ => "lifecycle" };
        var export = new Command("export", "Write captured connection lifecycles (and optionally sync metrics) as CSV for training.") { db, endpoint, tokenFile, caFile, output, format, metrics };
        export.SetAction((parse, cancellationToken) =>
        {
            var dbFile = parse.GetValue(db);
            var url = parse.GetValue(endpoint);
            var outFile = parse.GetValue(output)!;
            var metricsFile = parse.GetValue(metrics);
            var fmt = parse.GetValue(format);
            if (fmt is not ("lifecycle" or "trace"))
            {
                Console.Error.WriteLine($"clustersync: --format: expected 'lifecycle' or 'trace', found '{fmt}'");
                return Task.FromResult(CommandLine.BadInput);
            }

            if ((dbFile is null) == (url is null))
            {
                Console.Error.WriteLine("clustersync: telemetry export: expected exactly one of --db FILE (a stopped node's telemetry file) or --endpoint URL (a running node)");
                return Task.FromResult(CommandLine.BadInput);
            }

            if (url is not null)
            {
                if (metricsFile is not null)
                {
                    Console.Error.WriteLine("clustersync: --metrics: only with --db (a running node exports its lifecycles)");
                    return Task.FromResult(CommandLine.BadInput);
                }

                return ExportFromNodeAsync(url, parse.GetValue(tokenFile), parse.GetValue(caFile), fmt, outFile, cancellationToken);
            }

            if (!dbFile!.Exists)
            {
                Console.Error.WriteLine($"clustersync: {dbFile.FullName}: --db: no such telemetry file; expected the node's telemetry.path");
                return Task.FromResult(CommandLine.BadInput);
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

            return Task.FromResult(CommandLine.Success);
        });
        return new Command("telemetry", "Telemetry captured by a node (telemetry.enabled).") { export };
    }

    /// <summary><c>GET /telemetry/export?format=F</c> of a running node through <see cref="ControlClient"/>, streamed into <paramref name="outFile"/>.</summary>
    private static async Task<int> ExportFromNodeAsync(string endpoint, string? tokenFile, string? caFile, string format, FileInfo outFile, CancellationToken cancellationToken)
    {
        // No timeout: the export of a long capture streams for as long as it takes.
        using var client = ControlClient.Open(endpoint, tokenFile, caFile, timeoutSeconds: null);
        PathOptions.OutputFile("--out", outFile.FullName);
        var pathAndQuery = $"/telemetry/export?format={format}";
        var (streaming, refused) = await client.GetStreamingAsync(pathAndQuery, cancellationToken).ConfigureAwait(false);
        if (refused is not null)
        {
            return await refused.RefusedAsync().ConfigureAwait(false);
        }

        if (streaming is null)
        {
            return CommandLine.Failure;
        }

        using var response = streaming;
        try
        {
            long lines = 0;
            var tmp = outFile.FullName + ".partial";
            await using (var source = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false))
            using (var reader = new StreamReader(source))
            await using (var writer = new StreamWriter(tmp))
            {
                while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
                {
                    await writer.WriteLineAsync(line).ConfigureAwait(false);
                    lines++;
                }
            }

            File.Move(tmp, outFile.FullName, overwrite: true); // a cut stream never leaves a partial file under the name
            Console.WriteLine($"wrote {Math.Max(0, lines - 1):N0} connection lifecycles to {outFile.FullName} (from the running node at {client.BaseUri})");
            return CommandLine.Success;
        }
        catch (HttpRequestException ex)
        {
            await client.UnreachableAsync(client.Url(pathAndQuery), ex).ConfigureAwait(false);
            return CommandLine.Failure;
        }
    }
}
