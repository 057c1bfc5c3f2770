using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Adaptive.Model;
using ClusterSync.Training;
using PolicySimulation = ClusterSync.Training.Simulation;
using ClusterSync.Workload.Trace;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync simulate --trace FILE [--format trace|luflow|zeek] [--model FILE] [--budget B]... [--warmup H]
/// [--no-guard] [--model-only] [--plot FILE.png] [--json]</c>: the static policies and the oracle, then the node's own
/// adaptive controller replayed over the trace on a virtual clock at each loss budget (<c>adaptive@budget</c>), the
/// realized loss against each budget, and the frontier points against static 3 s.
/// </summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var trace = new Option<string>("--trace", "-t") { Description = "Trace file (a LUFlow zip, CSV or directory with --format luflow).", Required = true };
        var format = new Option<string>("--format") { Description = "trace (default), luflow or zeek.", DefaultValueFactory = _ => "trace" };
        var model = new Option<string?>("--model", "-m") { Description = "Lifetime model zip (without it: the controller in cold start, the static policies and the oracle)." };
        var budgets = new Option<double[]>("--budget") { Description = "Operator loss budgets: share of connection-seconds left unreplicated (repeatable).", AllowMultipleArgumentsPerToken = true };
        var warmup = new Option<double>("--warmup") { Description = "Hours of trace time before the realized loss is counted.", DefaultValueFactory = _ => 1 };
        var noGuard = new Option<bool>("--no-guard") { Description = "Replay without the baseline guard (the model alone)." };
        var modelOnly = new Option<bool>("--model-only") { Description = "Also the model-only rule with its price fitted to the trace's true lifetimes (model-only@budget; not what a node can do)." };
        var serviceClasses = new Option<bool>("--service-classes") { Description = "Replay with the default service classes (mission-critical synced at once, non-sync never) instead of one class delayed 3 s; the comparison with static-3s is then not like for like." };
        var noFrontier = new Option<bool>("--no-frontier") { Description = "Skip the search for the frontier points (about 20 more replays)." };
        var plot = new Option<string?>("--plot") { Description = "Write the frontier plot (PNG) to this file." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var noServiceEvidence = new Option<bool>("--no-service-evidence") { Description = "Replay with a service's own lifetimes overruling the model whenever the service has enough outcomes, whatever the evidence (adaptive.serviceEvidence false)." };
        var templates = new Option<bool>("--templates") { Description = "Also replay the static policies and the controller at the first budget with connection templates (docs/templates.md): messages and exposure without and with." };
        var templateThreshold = new Option<int>("--template-threshold") { Description = "With --templates: connections of one shape within the window that make a template.", DefaultValueFactory = _ => 20 };
        var templateWindow = new Option<double>("--template-window") { Description = "With --templates: the window, in seconds.", DefaultValueFactory = _ => 10 };
        var templateLifetime = new Option<double>("--template-lifetime") { Description = "With --templates: a template's lifetime after the last connection of its shape, in seconds.", DefaultValueFactory = _ => 60 };
        var set = new Option<string[]>("--set") { Description = "An adaptive setting for the replays, as NAME=VALUE (durations in seconds; repeatable): gain, lossWindow, guardWindow, guardSlowWindow, guardMinEvidence, serviceMinSamples, servicePriorWeight, serviceMaxDelay, serviceWindow, initialPrice, errorWeighting, holdWhileGuarded, guardSinceStart, maxErrorWeight, maxOverError.", AllowMultipleArgumentsPerToken = true };
        var priceLog = new Option<string?>("--price-log") { Description = "Also replay at the first budget and write what the budget loop saw, one CSV line a minute of trace time (price, realized loss, outcomes in its window, decisions)." };
        var telemetry = new Option<string?>("--telemetry") { Description = "Also replay at the first budget with the node's telemetry recorder attached: write the LiteDB file a node fed this trace would have (for `telemetry export` and `train`)." };
        var command = new Command("simulate", "Replay a trace under static policies and through the node's adaptive controller on a virtual clock; report messages, bytes, exposure and the realized loss against the budget.")
        {
            trace, format, model, budgets, warmup, noGuard, modelOnly, serviceClasses, noFrontier, plot, json, telemetry, noServiceEvidence,
            set, priceLog, templates, templateThreshold, templateWindow, templateLifetime,
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

            double warm = parse.GetValue(warmup);
            if (!(warm >= 0 && warm <= 24 * 365))
            {
                Console.Error.WriteLine($"clustersync: --warmup: expected hours ≥ 0, found {warm.ToString(CultureInfo.InvariantCulture)}");
                return CommandLine.BadInput;
            }

            if (parse.GetValue(plot) is { } plotPath)
            {
                PathOptions.OutputFile("--plot", plotPath);
            }

            if (parse.GetValue(telemetry) is { } telemetryPath)
            {
                PathOptions.OutputFile("--telemetry", telemetryPath);
            }

            var templateOptions = new ClusterSync.Policy.TemplateOptions
            {
                Threshold = parse.GetValue(templateThreshold),
                WindowSeconds = parse.GetValue(templateWindow),
                LifetimeSeconds = parse.GetValue(templateLifetime),
            };
            foreach (var error in templateOptions.Validate("--template"))
            {
                // "--template.threshold: ..." reads as the option it names: --template-threshold.
                Console.Error.WriteLine($"clustersync: {error.Replace("--template.", "--template-", StringComparison.Ordinal).Replace("Seconds:", ":", StringComparison.Ordinal)}");
                return CommandLine.BadInput;
            }

            LifetimeModel? lifetimeModel = null;
            var modelPath = parse.GetValue(model);
            if (modelPath is not null && !LifetimeModel.TryLoad(modelPath, out lifetimeModel, out var reason))
            {
                Console.Error.WriteLine($"clustersync: --model: {reason}");
                return CommandLine.BadInput;
            }

            var records = TraceLoader.Load(path, fmt);
            var adaptiveOptions = new AdaptiveOptions { ServiceEvidence = !parse.GetValue(noServiceEvidence) };
            foreach (var setting in parse.GetValue(set) ?? [])
            {
                if (!TryApply(adaptiveOptions, setting, out adaptiveOptions, out var why))
                {
                    Console.Error.WriteLine($"clustersync: --set: {why}");
                    return CommandLine.BadInput;
                }
            }

            var optionErrors = adaptiveOptions.Validate("--set").ToList();
            if (optionErrors.Count > 0)
            {
                Console.Error.WriteLine($"clustersync: {optionErrors[0]}");
                return CommandLine.BadInput;
            }

            if (parse.GetValue(priceLog) is { } priceLogPath)
            {
                PathOptions.OutputFile("--price-log", priceLogPath);
            }

            var report = PolicySimulation.Run(records, lifetimeModel, b, TimeSpan.FromHours(warm), !parse.GetValue(noGuard), parse.GetValue(modelOnly),
                parse.GetValue(serviceClasses), !parse.GetValue(noFrontier) || parse.GetValue(plot) is not null, adaptiveOptions);
            if (parse.GetValue(telemetry) is { } db)
            {
                // The node's own recorder, fed the replay's outcomes: a ring as large as the trace, so nothing is dropped.
                var classes = PolicySimulation.ReplayClasses(parse.GetValue(serviceClasses));
                using (var recorder = new ClusterSync.Telemetry.TelemetryRecorder(new ClusterSync.Telemetry.TelemetryOptions
                {
                    Enabled = true,
                    Path = db,
                    QueueCapacity = (int)Math.Min(1 << 24, Math.Max(1 << 18, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)records.Count + 1))),
                }, 1, classes))
                {
                    PolicySimulation.Record(records, lifetimeModel, b[0], TimeSpan.FromHours(warm), !parse.GetValue(noGuard), parse.GetValue(serviceClasses), recorder, adaptiveOptions);
                }

                Console.Error.WriteLine($"telemetry of the replay at budget {b[0].ToString(CultureInfo.InvariantCulture)} written to {db}");
            }

            if (parse.GetValue(priceLog) is { } logPath)
            {
                using var writer = new StreamWriter(logPath);
                PolicySimulation.LogPrice(records, lifetimeModel, b[0], TimeSpan.FromHours(warm), !parse.GetValue(noGuard), parse.GetValue(serviceClasses), writer, adaptiveOptions);
            }

            if (parse.GetValue(plot) is { } png)
            {
                PolicySimulation.Plot(png, records, lifetimeModel, report);
            }

            var withTemplates = parse.GetValue(templates)
                ? TemplateReplay.Run(records, new TemplateReplayOptions(templateOptions.Threshold, templateOptions.WindowSeconds, templateOptions.LifetimeSeconds),
                    b[0], lifetimeModel, TimeSpan.FromHours(warm), !parse.GetValue(noGuard))
                : null;
            if (parse.GetValue(json))
            {
                Console.WriteLine(ToJson(report, withTemplates));
            }
            else
            {
                Render(report, path);
                if (withTemplates is not null)
                {
                    RenderTemplates(withTemplates, templateOptions);
                }
            }

            return CommandLine.Success;
        });
        return command;
    }

    /// <summary>Applies one <c>--set NAME=VALUE</c> to the replays' adaptive options (durations in seconds).</summary>
    internal static bool TryApply(AdaptiveOptions options, string setting, out AdaptiveOptions result, out string reason)
    {
        result = options;
        reason = "";
        int eq = setting.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || !double.TryParse(setting[(eq + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            reason = $"expected NAME=NUMBER, found '{setting}'";
            return false;
        }

        var seconds = TimeSpan.FromSeconds(Math.Clamp(v, 0, TimeSpan.MaxValue.TotalSeconds / 2));
        AdaptiveOptions? r = setting[..eq] switch
        {
            "gain" => options with { Gain = v },
            "lossWindow" => options with { LossWindow = seconds },
            "guardWindow" => options with { GuardWindow = seconds },
            "guardSlowWindow" => options with { GuardSlowWindow = seconds },
            "guardMinEvidence" => options with { GuardMinEvidence = v },
            "serviceMinSamples" => options with { ServiceMinSamples = v },
            "servicePriorWeight" => options with { ServicePriorWeight = v },
            "serviceMaxDelay" => options with { ServiceMaxDelay = seconds },
            "serviceWindow" => options with { ServiceWindow = seconds },
            "initialPrice" => options with { InitialPrice = v },
            "errorWeighting" => options with { ErrorWeighting = v != 0 },
            "holdWhileGuarded" => options with { HoldWhileGuarded = v != 0 },
            "guardSinceStart" => options with { GuardSinceStart = v != 0 },
            "maxErrorWeight" => options with { MaxErrorWeight = v },
            "maxOverError" => options with { MaxOverError = v },
            _ => null,
        };
        if (r is null)
        {
            reason = $"'{setting[..eq]}' is not a setting --set knows (gain, lossWindow, guardWindow, guardSlowWindow, guardMinEvidence, serviceMinSamples, servicePriorWeight, serviceMaxDelay, serviceWindow, initialPrice, errorWeighting, holdWhileGuarded, guardSinceStart, maxErrorWeight, maxOverError)";
            return false;
        }

        result = r;
        return true;
    }

    public static string ToJson(SimulationRun run, IReadOnlyList<TemplatePolicyResult>? templates = null)
    {
        var report = run.Report;
        var s3 = run.Static3s;
        FrontierPointJson? Point(ReplayResult? r) => r is null ? null
            : new FrontierPointJson(r.Budget, r.Messages, r.ExposureSeconds, Ratio(r.Messages, s3.Messages), Ratio(r.ExposureSeconds, s3.ExposureSeconds), r.RealizedLoss);
        return JsonSerializer.Serialize(new SimulationJson(report.Connections, report.SpanSeconds,
            report.Policies.Select(p => new PolicyJson(p.Name, p.Messages, p.Bytes, p.ExposureSeconds, p.ExpectedLoss)).ToList(),
            run.Warmup.TotalHours, run.Guard, run.ServiceClasses, run.NeverSyncClassShare,
            run.Budgets.Select(r => new BudgetJson(r.Budget, r.RealizedLoss, r.RealizedLoss / r.Budget, r.ControllerRealizedLoss, r.FinalPrice, r.Guarded)).ToList(),
            run.Frontier is null ? null : new FrontierJson(Point(run.Frontier.AtStaticMessages), Point(run.Frontier.AtStaticExposure),
                run.Frontier.Sweep.Select(r => Point(r)!).ToList(), WorseOnBoth(run.Frontier, s3),
                PerClassStatic(run) is { } pcs ? WorseOnBoth(run.Frontier, pcs) : null),
            run.ServiceBound is not { } sb ? null : new ServiceBoundJson(sb.Services, sb.PooledConnections, Bound(sb.AtMessages), Bound(sb.AtExposure)))
        {
            Templates = templates?.Select(t => new TemplatePolicyJson(t.Name, t.Messages, t.ExposureSeconds, t.MessagesWithTemplates,
                t.ExposureSecondsWithTemplates, t.TemplateMessages, t.TemplatesCreated, t.Covered)).ToList(),
        },
            SimulateJsonContext.Default.SimulationJson);

        ServiceBoundPointJson Bound(ServiceBoundPoint p)
            => new(p.Messages, p.ExposureSeconds, Ratio(p.Messages, s3.Messages), Ratio(p.ExposureSeconds, s3.ExposureSeconds), p.Price, p.MixedService);
    }

    /// <summary>Replays of the frontier search (every budget tried) that sent more messages and exposed more than <paramref name="reference"/>.</summary>
    private static int WorseOnBoth(ControllerFrontierResult frontier, PolicyResult reference)
        => frontier.Sweep.Count(r => r.Messages > reference.Messages && r.ExposureSeconds > reference.ExposureSeconds);

    /// <summary>With <c>--service-classes</c>: the classes' own static policies on the trace (the guard's reference there); otherwise null.</summary>
    private static PolicyResult? PerClassStatic(SimulationRun run)
        => run.ServiceClasses ? run.Report.Policies.FirstOrDefault(p => p.Name == "per-class-static") : null;

    private static void RenderTemplates(IReadOnlyList<TemplatePolicyResult> results, ClusterSync.Policy.TemplateOptions o)
    {
        var c = CultureInfo.InvariantCulture;
        AnsiConsole.MarkupLine(Markup.Escape($"connection templates (threshold {o.Threshold.ToString(c)} within {o.WindowSeconds.ToString(c)} s, lifetime {o.LifetimeSeconds.ToString(c)} s): " +
            $"{results[0].TemplatesCreated.ToString("N0", c)} templates, {results[0].Covered.ToString("N0", c)} connections covered, {results[0].TemplateMessages.ToString("N0", c)} template records"));
        var table = new Spectre.Console.Table().AddColumns("policy", "messages", "with templates", "exposure (s)", "with templates", "exposure removed");
        foreach (var t in results)
        {
            table.AddRow(t.Name, t.Messages.ToString("N0", c), t.MessagesWithTemplates.ToString("N0", c), t.ExposureSeconds.ToString("N0", c),
                t.ExposureSecondsWithTemplates.ToString("N0", c), (100 * t.ExposureRemovedShare).ToString("0.0", c) + " %");
        }

        AnsiConsole.Write(table);
    }

    private static double Ratio(double a, double b) => b > 0 ? a / b : double.NaN;

    private static void Render(SimulationRun run, string path)
    {
        var c = CultureInfo.InvariantCulture;
        var report = run.Report;
        AnsiConsole.MarkupLineInterpolated($"[bold]{path}[/]: {report.Connections:N0} connections over {report.SpanSeconds / 3600:0.##} h");
        var table = new Spectre.Console.Table().AddColumns("policy", "messages", "bytes", "exposure (s)", "expected loss");
        foreach (var p in report.Policies)
        {
            table.AddRow(p.Name, p.Messages.ToString("N0", c), p.Bytes.ToString("N0", c), p.ExposureSeconds.ToString("N0", c), p.ExpectedLoss.ToString("0.###", c));
        }

        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"adaptive@budget: the node's controller on a virtual clock ({(run.Guard ? "baseline guard on" : "no guard")}; {(run.ServiceClasses ? $"default service classes, never-sync classes {(100 * run.NeverSyncClassShare).ToString("0.#", c)} % of connection-seconds, apart" : "one class, static 3 s as its baseline")}); realized loss counted after {run.Warmup.TotalHours.ToString("0.##", c)} h of trace time on the classes the policy acts on.");
        var budgets = new Spectre.Console.Table().AddColumns("budget", "realized loss", "× budget", "final price", "guarded decisions");
        foreach (var r in run.Budgets)
        {
            budgets.AddRow(r.Budget.ToString("0.####", c), r.RealizedLoss.ToString("0.####", c), (r.RealizedLoss / r.Budget).ToString("0.##", c),
                r.FinalPrice.ToString("0.###", c), r.Guarded.ToString("N0", c));
        }

        AnsiConsole.Write(budgets);
        if (run.Frontier is { } f)
        {
            var s3 = run.Static3s;
            var ft = new Spectre.Console.Table().AddColumns("point", "budget", "messages", "vs static-3s", "exposure (s)", "vs static-3s", "realized loss");
            ft.AddRow("static-3s", "-", s3.Messages.ToString("N0", c), "100 %", s3.ExposureSeconds.ToString("N0", c), "100 %", "-");
            void Row(string name, ReplayResult? r)
            {
                if (r is null)
                {
                    ft.AddRow(name, "none found", "-", "-", "-", "-", "-");
                    return;
                }

                ft.AddRow(name, r.Budget.ToString("0.#####", c), r.Messages.ToString("N0", c), (100 * Ratio(r.Messages, s3.Messages)).ToString("0.0", c) + " %",
                    r.ExposureSeconds.ToString("N0", c), (100 * Ratio(r.ExposureSeconds, s3.ExposureSeconds)).ToString("0.0", c) + " %", r.RealizedLoss.ToString("0.####", c));
            }

            Row("adaptive (≤ static-3s messages)", f.AtStaticMessages);
            Row("adaptive (≤ static-3s exposure)", f.AtStaticExposure);
            if (run.ServiceBound is { } sb)
            {
                foreach (var (name, p) in new[] { ("best-per-service (= static-3s messages; in-sample reference)", sb.AtMessages), ("best-per-service (= static-3s exposure; in-sample reference)", sb.AtExposure) })
                {
                    ft.AddRow(name, "-", p.Messages.ToString("N0", c), (100 * Ratio(p.Messages, s3.Messages)).ToString("0.0", c) + " %",
                        p.ExposureSeconds.ToString("N0", c), (100 * Ratio(p.ExposureSeconds, s3.ExposureSeconds)).ToString("0.0", c) + " %", "-");
                }
            }

            AnsiConsole.Write(ft);
            // Every budget the search replayed, against static 3 s; with the service classes also against the guard's
            // reference there, each class's own static policy (never-sync classes never synced, mission-critical at once).
            string perClass = PerClassStatic(run) is { } pcs ? $"; worse than per-class-static on both: {WorseOnBoth(f, pcs)}" : "";
            AnsiConsole.WriteLine($"frontier search: {f.Sweep.Count} budgets replayed; worse than static-3s on both axes: {WorseOnBoth(f, s3)}{perClass}");
        }
    }
}

internal sealed record PolicyJson(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("messages")] long Messages,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("exposure_seconds")] double ExposureSeconds,
    [property: JsonPropertyName("expected_loss")] double ExpectedLoss);

internal sealed record BudgetJson(
    [property: JsonPropertyName("budget")] double Budget,
    [property: JsonPropertyName("realized_loss")] double RealizedLoss,
    [property: JsonPropertyName("realized_over_budget")] double RealizedOverBudget,
    [property: JsonPropertyName("controller_realized_loss")] double ControllerRealizedLoss,
    [property: JsonPropertyName("final_price")] double FinalPrice,
    [property: JsonPropertyName("guarded_decisions")] long Guarded);

internal sealed record FrontierPointJson(
    [property: JsonPropertyName("budget")] double Budget,
    [property: JsonPropertyName("messages")] long Messages,
    [property: JsonPropertyName("exposure_seconds")] double ExposureSeconds,
    [property: JsonPropertyName("messages_vs_static_3s")] double MessagesVsStatic,
    [property: JsonPropertyName("exposure_vs_static_3s")] double ExposureVsStatic,
    [property: JsonPropertyName("realized_loss")] double RealizedLoss);

internal sealed record FrontierJson(
    [property: JsonPropertyName("at_static_3s_messages")] FrontierPointJson? AtStaticMessages,
    [property: JsonPropertyName("at_static_3s_exposure")] FrontierPointJson? AtStaticExposure,
    [property: JsonPropertyName("sweep")] IReadOnlyList<FrontierPointJson> Sweep,
    [property: JsonPropertyName("worse_than_static_3s_on_both")] int WorseOnBoth,
    [property: JsonPropertyName("worse_than_per_class_static_on_both")] int? WorseThanPerClassStaticOnBoth);

internal sealed record ServiceBoundPointJson(
    [property: JsonPropertyName("messages")] double Messages,
    [property: JsonPropertyName("exposure_seconds")] double ExposureSeconds,
    [property: JsonPropertyName("messages_vs_static_3s")] double MessagesVsStatic,
    [property: JsonPropertyName("exposure_vs_static_3s")] double ExposureVsStatic,
    [property: JsonPropertyName("price")] double Price,
    [property: JsonPropertyName("mixed_service")] string MixedService);

/// <summary>The in-sample <c>best-per-service</c> reference (not a policy): see <see cref="ServiceBound"/>.</summary>
internal sealed record ServiceBoundJson(
    [property: JsonPropertyName("services")] int Services,
    [property: JsonPropertyName("pooled_connections")] long PooledConnections,
    [property: JsonPropertyName("at_static_3s_messages")] ServiceBoundPointJson AtStaticMessages,
    [property: JsonPropertyName("at_static_3s_exposure")] ServiceBoundPointJson AtStaticExposure);

internal sealed record SimulationJson(
    [property: JsonPropertyName("connections")] long Connections,
    [property: JsonPropertyName("span_seconds")] double SpanSeconds,
    [property: JsonPropertyName("policies")] IReadOnlyList<PolicyJson> Policies,
    [property: JsonPropertyName("warmup_hours")] double WarmupHours,
    [property: JsonPropertyName("guard")] bool Guard,
    [property: JsonPropertyName("service_classes")] bool ServiceClasses,
    [property: JsonPropertyName("never_sync_class_share")] double NeverSyncClassShare,
    [property: JsonPropertyName("budgets")] IReadOnlyList<BudgetJson> Budgets,
    [property: JsonPropertyName("frontier")] FrontierJson? Frontier,
    [property: JsonPropertyName("best_per_service")] ServiceBoundJson? BestPerService)
{
    /// <summary>With <c>--templates</c>: the static policies without and with connection templates.</summary>
    [JsonPropertyName("templates")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<TemplatePolicyJson>? Templates { get; init; }
}

internal sealed record TemplatePolicyJson(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("messages")] long Messages,
    [property: JsonPropertyName("exposure_seconds")] double ExposureSeconds,
    [property: JsonPropertyName("messages_with_templates")] long MessagesWithTemplates,
    [property: JsonPropertyName("exposure_seconds_with_templates")] double ExposureSecondsWithTemplates,
    [property: JsonPropertyName("template_messages")] long TemplateMessages,
    [property: JsonPropertyName("templates_created")] long TemplatesCreated,
    [property: JsonPropertyName("covered")] long Covered);

[JsonSerializable(typeof(SimulationJson))]
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed partial class SimulateJsonContext : JsonSerializerContext;
