using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Spectre.Console;

namespace ClusterSync.Cli.Demo;

/// <summary>
/// <c>clustersync demo [--json] [--seconds N] [--rate R] [--policy adaptive|static|sync-all]</c>: see <see cref="DemoRunner"/>. Exit 0 only if no
/// synchronized connection was lost (<c>lost_synced</c> 0); 1 when one was, or the cluster misbehaved; 2 on bad usage.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the summary as one JSON object." };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of traffic through the Active before it is killed.", DefaultValueFactory = _ => 8 };
        var rate = new Option<double>("--rate") { Description = "Connection changes per second offered to the Active.", DefaultValueFactory = _ => 5000 };
        var policy = new Option<string>("--policy")
        {
            Description = "The members' sync policy: adaptive (the shipped model decides per connection), static (the default service classes) or sync-all.",
            DefaultValueFactory = _ => "adaptive",
        };
        var templates = new Option<bool>("--templates")
        {
            Description = "Connection templates on for every class (5 connections of one shape within 10 s; docs/templates.md): unsynchronized connections a template covers are picked up after the failover.",
        };
        var command = new Command("demo", "A 3-member cluster on loopback (separate processes), mixed traffic, the Active killed with SIGKILL mid-run; prints what was preserved and lost.")
        {
            json, seconds, rate, policy, templates,
        };
        command.SetAction((parse, token) => RunAsync(parse.GetValue(json), parse.GetValue(seconds), parse.GetValue(rate), parse.GetValue(policy), token, parse.GetValue(templates)));
        return command;
    }

    private static async Task<int> RunAsync(bool json, double seconds, double rate, string? policyName, CancellationToken token, bool templates = false)
    {
        if (ParsePolicy(policyName) is not { } policy)
        {
            await Console.Error.WriteLineAsync($"clustersync: demo: --policy: expected adaptive, static or sync-all, found '{policyName}'").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        if (!(seconds >= 1 && seconds <= 600))
        {
            await Console.Error.WriteLineAsync("clustersync: demo: --seconds: expected 1 to 600").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        if (!(rate >= 100 && rate <= 1_000_000))
        {
            await Console.Error.WriteLineAsync("clustersync: demo: --rate: expected 100 to 1000000 changes/s").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        var options = new DemoOptions { ChurnSeconds = seconds, Rate = rate, Connections = (int)Math.Clamp(rate * 4, 2_000, 400_000), Policy = policy, Templates = templates };
        var (result, code) = await RunWithCleanupAsync(options, json ? Console.Error.WriteLine : line => AnsiConsole.MarkupLineInterpolated($"[grey]{line}[/]"), token).ConfigureAwait(false);
        if (result is null)
        {
            return code;
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(ToJson(result, options), new JsonSerializerOptions { WriteIndented = false }));
        }
        else
        {
            Render(result, options, AnsiConsole.Console);
        }

        return Passed(result) ? CommandLine.Success : CommandLine.Failure;
    }

    internal static DemoPolicy? ParsePolicy(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "adaptive" => DemoPolicy.Adaptive,
        "static" => DemoPolicy.Static,
        "sync-all" => DemoPolicy.SyncAll,
        _ => null,
    };

    internal static string PolicyName(DemoPolicy policy) => policy switch
    {
        DemoPolicy.Adaptive => "adaptive",
        DemoPolicy.SyncAll => "sync-all",
        _ => "static",
    };

    /// <summary>No synchronized connection lost, and the takeover was caused by the kill (not a false failover before it).</summary>
    internal static bool Passed(DemoResult result) => result.Tally.Total.LostSynced == 0 && !result.PrematureTakeover;

    /// <summary>Runs the demo; Ctrl+C, SIGTERM and SIGQUIT cancel it, and the runner kills its processes and deletes its files.</summary>
    internal static async Task<(DemoResult? Result, int Code)> RunWithCleanupAsync(DemoOptions options, Action<string> progress, CancellationToken token)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            cts.Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, Stop);
        try
        {
            return (await new DemoRunner(options, progress).RunAsync(cts.Token).ConfigureAwait(false), CommandLine.Success);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("clustersync: demo: interrupted; processes stopped and files removed").ConfigureAwait(false);
            return (null, CommandLine.Failure);
        }
        catch (DemoException ex)
        {
            await Console.Error.WriteLineAsync($"clustersync: demo: {ex.Message}").ConfigureAwait(false);
            return (null, CommandLine.Failure);
        }
    }

    internal static Dictionary<string, object> ToJson(DemoResult r, DemoOptions options)
    {
        var t = r.Tally.Total;
        return new Dictionary<string, object>
        {
            ["alive_at_failover"] = t.Alive,
            ["synced_at_failover"] = t.Synced,
            ["preserved"] = t.Preserved,
            ["lost_synced"] = t.LostSynced,
            ["lost_unsynced"] = t.LostUnsynced,
            ["picked_up_by_template"] = t.PickedUpByTemplate,
            ["templates"] = options.Templates,
            ["templates_committed"] = r.TemplatesCommitted,
            ["failover_ms"] = r.FailoverMs,
            ["detection_ms"] = r.DetectionMs,
            ["new_active"] = r.NewActive,
            ["captured_before_promotion"] = r.CapturedBeforePromotion,
            ["premature_takeover"] = r.PrematureTakeover,
            ["extra_takeovers"] = r.ExtraTakeovers,
            ["survivors"] = r.SurvivorsSeen,
            ["committed"] = r.Committed,
            ["captured_not_alive"] = r.Tally.CapturedNotAlive,
            ["messages"] = r.Messages,
            ["messages_sync_all"] = r.MessagesSyncAll,
            ["datagrams"] = r.Datagrams,
            ["changes_fed"] = r.ChangesFed,
            ["changes_per_second_at_kill"] = r.ChangesPerSecondAtKill,
            ["churn_seconds"] = r.ChurnSeconds,
            ["rate"] = options.Rate,
            ["policy"] = PolicyName(options.Policy),
            ["model"] = (object?)r.Model ?? "none",
            ["model_source"] = (object?)r.ModelSource ?? "none",
            ["model_trained_at"] = (object?)r.ModelTrainedAt ?? "",
            ["decisions"] = r.Decisions ?? new Dictionary<string, long>(),
            ["workload"] = options.ServiceLifetimes ? "service-mix lifetimes" : "population",
            ["exposed_at_failover"] = t.Alive - t.Synced,
            ["messages_static_3s"] = r.Static3s?.Messages ?? -1,
            ["exposed_static_3s"] = r.Static3s?.Exposed ?? -1,
            ["seconds"] = r.TotalSeconds,
            ["by_class"] = r.Tally.ByClass.ToDictionary(kv => kv.Key, kv => (object)new Dictionary<string, int>
            {
                ["alive"] = kv.Value.Alive,
                ["synced"] = kv.Value.Synced,
                ["preserved"] = kv.Value.Preserved,
                ["lost_synced"] = kv.Value.LostSynced,
                ["lost_unsynced"] = kv.Value.LostUnsynced,
                ["picked_up_by_template"] = kv.Value.PickedUpByTemplate,
                ["exposed"] = kv.Value.Alive - kv.Value.Synced,
            }),
            ["lost_synced_sample"] = r.Tally.LostSyncedSample,
        };
    }

    internal static void Render(DemoResult r, DemoOptions options, IAnsiConsole console)
    {
        var c = CultureInfo.InvariantCulture;
        var t = r.Tally.Total;
        console.WriteLine();
        console.Write(new Rule($"[bold]member 1 SIGKILLed at {r.ChangesPerSecondAtKill.ToString("N0", c)} changes/s; member {r.NewActive} took over[/]").LeftJustified());
        console.MarkupLine("[grey]alive: in member 1's data plane at the kill; synced: held by a survivor when it saw member 1 dead; preserved: in the new Active's committed table[/]");
        var table = new Spectre.Console.Table().Border(TableBorder.Rounded)
            .AddColumn("service class").AddColumn(new TableColumn("alive").RightAligned()).AddColumn(new TableColumn("synced").RightAligned())
            .AddColumn(new TableColumn("preserved").RightAligned()).AddColumn(new TableColumn("lost synced").RightAligned()).AddColumn(new TableColumn("lost unsynced").RightAligned());
        foreach (var (name, v) in r.Tally.ByClass)
        {
            table.AddRow(Markup.Escape(name), N(v.Alive), N(v.Synced), N(v.Preserved), Lost(v.LostSynced), N(v.LostUnsynced));
        }

        table.AddRow("[bold]all[/]", $"[bold]{N(t.Alive)}[/]", $"[bold]{N(t.Synced)}[/]", $"[bold]{N(t.Preserved)}[/]", Lost(t.LostSynced), $"[bold]{N(t.LostUnsynced)}[/]");
        console.Write(table);
        var facts = new Grid().AddColumn().AddColumn();
        facts.AddRow("failover time", $"[bold]{r.FailoverMs.ToString("N1", c)} ms[/] from the kill to member {r.NewActive} serving with {N(r.Committed)} connections committed (death seen after {r.DetectionMs.ToString("N1", c)} ms)");
        double share = r.MessagesSyncAll == 0 ? 0 : 100.0 * r.Messages / r.MessagesSyncAll;
        facts.AddRow("sync cost", $"[bold]{N(r.Messages)}[/] sync messages for {N(r.MessagesSyncAll)} changes: {share.ToString("N1", c)} % of what sync-everything would send ({N(r.Datagrams)} datagrams)");
        if (r.Static3s is { } s3)
        {
            double s3share = r.ChangesFed == 0 ? 0 : 100.0 * s3.Messages / r.ChangesFed;
            facts.AddRow("static 3 s", $"{N(s3.Messages)} messages for the {N(r.ChangesFed)} changes fed: {s3share.ToString("N1", c)} % of sync-all, with {N(s3.Exposed)} alive connections unreplicated at the kill (counted offline from the generated lifetimes)");
        }

        if (options.Templates || t.PickedUpByTemplate > 0)
        {
            facts.AddRow("templates", $"[bold]{N(t.PickedUpByTemplate)}[/] of the {N(t.Alive - t.Preserved)} alive connections not committed match one of the {N(r.TemplatesCommitted)} templates the new Active committed: picked up by template at their next packet");
        }

        facts.AddRow("exposure at the kill", $"[bold]{N(t.Alive - t.Synced)}[/] of {N(t.Alive)} alive not replicated: "
            + Markup.Escape(string.Join(", ", r.Tally.ByClass.Select(kv => $"{kv.Key} {N(kv.Value.Alive - kv.Value.Synced)}"))));
        var policy = options.Policy switch
        {
            DemoPolicy.Adaptive => r.Model is null ? "adaptive, no model (cold start)" : $"adaptive, model {r.Model} ({r.ModelSource ?? "-"}, trained {r.ModelTrainedAt ?? "-"})",
            DemoPolicy.SyncAll => "sync-all",
            _ => "static classes",
        };
        if (r.Decisions is { Count: > 0 } d)
        {
            policy += "; decisions " + string.Join(", ", d.Where(kv => kv.Value > 0).Select(kv => $"{kv.Key} {N(kv.Value)}"));
        }

        facts.AddRow("traffic", $"{N(r.ChangesFed)} changes in {r.ChurnSeconds.ToString("N1", c)} s at {options.Rate.ToString("N0", c)}/s offered ({(options.ServiceLifetimes ? "service-mix lifetimes" : "fixed population")}); policy {Markup.Escape(policy)}");
        facts.AddRow("verdict", t.LostSynced == 0
            ? $"[green]no synchronized connection lost[/] ({N(t.Preserved)} of {N(t.Alive)} alive preserved; the {N(t.LostUnsynced)} lost had never been synchronized: never-sync class, still in their sync delay, or in flight)"
            : $"[red]{N(t.LostSynced)} synchronized connections lost[/], e.g. {Markup.Escape(string.Join(", ", r.Tally.LostSyncedSample))}");
        if (r.PrematureTakeover)
        {
            facts.AddRow("[red]warning[/]", $"[red]a survivor saw the Active dead before the kill (a false failover: heartbeats starved on a loaded machine); this run does not measure the kill: {Markup.Escape(r.SurvivorsSeen)}[/]");
        }

        if (r.ExtraTakeovers > 0)
        {
            facts.AddRow("[yellow]note[/]", $"[yellow]{r.ExtraTakeovers} more takeover(s) after the first (a survivor missed the new Active's heartbeats while it committed; resolved by rank): {Markup.Escape(r.SurvivorsSeen)}[/]");
        }

        console.Write(facts);
        console.MarkupLine($"[grey]demo took {r.TotalSeconds.ToString("N1", c)} s; processes stopped, files removed[/]");

        static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        static string Lost(int v) => v == 0 ? "[green]0[/]" : $"[red bold]{N(v)}[/]";
    }
}
