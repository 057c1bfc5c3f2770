using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSync.Adaptive.Model;
using ClusterSync.Training;
using ClusterSync.Workload.Trace;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync simulate --trace FILE [--format trace|luflow|zeek] [--model FILE] [--budget B]... [--json]</c>:
/// replays a trace under sync-all, static-3s, static-30s, per-class-static, oracle and adaptive@budget.
/// </summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var trace = new Option<string>("--trace", "-t") { Description = "Trace file (a LUFlow zip, CSV or directory with --format luflow).", Required = true };
        var format = new Option<string>("--format") { Description = "trace (default), luflow or zeek.", DefaultValueFactory = _ => "trace" };
        var model = new Option<string?>("--model", "-m") { Description = "Lifetime model zip for the adaptive policy (without it: static policies and the oracle only)." };
        var budgets = new Option<double[]>("--budget") { Description = "Loss budgets of adaptive@budget: share of connection-seconds left unreplicated (repeatable).", AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("simulate", "Replay a trace under static and adaptive sync policies; report messages, bytes and exposure.")
        {
            trace, format, model, budgets, json,
        };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(trace)!;
            var fmt = TraceLoader.ParseFormat(parse.GetValue(format));
            var b = parse.GetValue(budgets) is { Length: > 0 } given ? given : [.. PolicySimulator.DefaultBudgets];
            foreach (var x in b)
            {
                if (!(x > 0 && x < 1))
                {
                    Console.Error.WriteLine($"clustersync: --budget: expected a share in (0, 1), found {x.ToString(CultureInfo.InvariantCulture)}");
                    return CommandLine.BadInput;
                }
            }

            LifetimeModel? lifetimeModel = null;
            var modelPath = parse.GetValue(model);
            if (modelPath is not null && !LifetimeModel.TryLoad(modelPath, out lifetimeModel, out var reason))
            {
                Console.Error.WriteLine($"clustersync: --model: {reason}");
                return CommandLine.BadInput;
            }

            var records = TraceLoader.Load(path, fmt);
            var report = new PolicySimulator(records, lifetimeModel).Run(b);
            if (parse.GetValue(json))
            {
                Console.WriteLine(ToJson(report));
            }
            else
            {
                Render(report, path);
            }

            return CommandLine.Success;
        });
        return command;
    }

    public static string ToJson(SimulationReport report)
        => JsonSerializer.Serialize(new SimulationJson(report.Connections, report.SpanSeconds,
            report.Policies.Select(p => new PolicyJson(p.Name, p.Messages, p.Bytes, p.ExposureSeconds, p.ExpectedLoss)).ToList()), SimulateJsonContext.Default.SimulationJson);

    private static void Render(SimulationReport report, string path)
    {
        AnsiConsole.MarkupLineInterpolated($"[bold]{path}[/]: {report.Connections:N0} connections over {report.SpanSeconds / 3600:0.##} h");
        var table = new Spectre.Console.Table().AddColumns("policy", "messages", "bytes", "exposure (s)", "expected loss");
        foreach (var p in report.Policies)
        {
            table.AddRow(p.Name, p.Messages.ToString("N0", CultureInfo.InvariantCulture), p.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                p.ExposureSeconds.ToString("N0", CultureInfo.InvariantCulture), p.ExpectedLoss.ToString("0.###", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
    }
}

internal sealed record PolicyJson(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("messages")] long Messages,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("exposure_seconds")] double ExposureSeconds,
    [property: JsonPropertyName("expected_loss")] double ExpectedLoss);

internal sealed record SimulationJson(
    [property: JsonPropertyName("connections")] long Connections,
    [property: JsonPropertyName("span_seconds")] double SpanSeconds,
    [property: JsonPropertyName("policies")] IReadOnlyList<PolicyJson> Policies);

[JsonSerializable(typeof(SimulationJson))]
internal sealed partial class SimulateJsonContext : JsonSerializerContext;
