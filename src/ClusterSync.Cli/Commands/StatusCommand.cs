using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Node.Control;
using ClusterSync.Node.Runtime;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary><c>clustersync status [--endpoint URL] [--json]</c>: a running node's <c>/status</c>, as a syncstat-style table or JSON.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var endpoint = new Option<string>("--endpoint", "-e")
        {
            Description = "The node's control endpoint.",
            DefaultValueFactory = _ => ControlClient.DefaultEndpoint,
        };
        var json = new Option<bool>("--json") { Description = "Print the node's status document (JSON) instead of tables." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the node.", DefaultValueFactory = _ => 5 };
        var tokenFile = new Option<string?>("--token-file")
        {
            Description = "The node's control token file (node.control.tokenFile); needed when the node sets node.control.requireTokenForReads.",
        };
        var caFile = new Option<string?>("--ca-file")
        {
            Description = "For an https endpoint: the certificate (PEM) that signed the node's certificate, or the node's own self-signed one; default: the system's trusted roots.",
        };
        var command = new Command("status", "Member state and sync statistics of a running node (like 'cphaprob syncstat').") { endpoint, json, timeout, tokenFile, caFile };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(endpoint)!, parse.GetValue(json), parse.GetValue(timeout), Console.Out, cancellationToken,
            parse.GetValue(tokenFile), parse.GetValue(caFile)));
        return command;
    }

    /// <summary>
    /// Reads the node's <c>/status</c> through <see cref="ControlClient"/> and prints it. Exit 0 when the node runs, 1 when
    /// it cannot be reached, refuses, or does not run; bad options throw <see cref="ConfigurationException"/> (exit 2).
    /// </summary>
    public static async Task<int> RunAsync(string endpoint, bool json, double timeoutSeconds, TextWriter output, CancellationToken cancellationToken, string? tokenFile = null,
        string? caFile = null)
    {
        ControlAnswer? answer;
        using (var client = ControlClient.Open(endpoint, tokenFile, caFile, timeoutSeconds))
        {
            answer = await client.SendAsync(HttpMethod.Get, "/status", cancellationToken).ConfigureAwait(false);
        }

        if (answer is null)
        {
            return CommandLine.Failure;
        }

        if (!answer.Ok)
        {
            return await answer.RefusedAsync().ConfigureAwait(false);
        }

        var url = answer.Url;
        string body = answer.Body;
        NodeStatus status;
        try
        {
            status = JsonSerializer.Deserialize<NodeStatus>(body, ControlEndpoint.StatusJson)
                ?? throw new JsonException("empty document");
        }
        catch (JsonException ex)
        {
            await Console.Error.WriteLineAsync($"clustersync: {url}: not a node status document: {ex.Message}").ConfigureAwait(false);
            return CommandLine.Failure;
        }

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(status, ControlEndpoint.StatusJson)).ConfigureAwait(false);
        }
        else
        {
            Render(status, output);
        }

        return status.State == "running" ? CommandLine.Success : CommandLine.Failure;
    }

    /// <summary>Three tables: the member, its peers, and the sync statistics (delta sync counters and drops).</summary>
    public static void Render(NodeStatus s, TextWriter output)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = output == Console.Out ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = output == Console.Out ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        var c = CultureInfo.InvariantCulture;

        if (output != Console.Out || Console.IsOutputRedirected)
        {
            console.Profile.Width = 132;
        }

        var member = new Spectre.Console.Table().Title("Member").AddColumn("Field").AddColumn("Value");
        member.AddRow("Member", s.MemberId.ToString(c));
        member.AddRow("Member state", Markup.Escape($"{s.Membership.State} ({s.Membership.Mode}, priority {s.Membership.Priority}{(s.Membership.Preemption ? ", preemption" : "")})"));
        member.AddRow("Failovers", Markup.Escape($"{s.Membership.Failovers.ToString(c)} (last {s.Membership.LastFailoverMs.ToString("0.0", c)} ms, {s.Membership.LastCommitted.ToString("N0", c)} connections committed)"));
        member.AddRow("Split brains resolved", s.Membership.SplitBrainsResolved.ToString(c));
        member.AddRow("Full syncs", Markup.Escape(
            $"served {Get(s.FullSync, "full_sync_served").ToString(c)} (failed {Get(s.FullSync, "full_sync_serve_failed").ToString(c)}), " +
            $"received {Get(s.FullSync, "full_sync_received").ToString(c)} (failed {Get(s.FullSync, "full_sync_receive_failed").ToString(c)})"));
        var tp = s.Templates;
        member.AddRow("Templates", Markup.Escape(
            $"{tp.Live.ToString("N0", c)} live, {tp.Created.ToString("N0", c)} created; covered {tp.Covered.ToString("N0", c)} connections " +
            $"({tp.CoveredEnded.ToString("N0", c)} protected by the template alone, {tp.ExposureRemovedSeconds.ToString("0.#", c)} s of exposure removed); " +
            $"{tp.RecordsSent.ToString("N0", c)} template records sent, messages saved {tp.MessagesSaved.ToString("N0", c)}; " +
            $"picked up after failover {tp.PickedUpByTemplate.ToString("N0", c)}"));
        member.AddRow("Table digest", Markup.Escape($"{s.Digest.Count.ToString("N0", c)} / {s.Digest.Xor}"));
        member.AddRow("State", Markup.Escape(s.State + (s.Failure is null ? "" : $" ({s.Failure})")));
        member.AddRow("Epoch", s.Epoch.ToString(c));
        member.AddRow("Sync address", Markup.Escape(s.SyncAddress));
        if (s.SyncTransportPath.Length > 0)
        {
            member.AddRow("Sync transport", Markup.Escape(s.SyncTransportPath));
        }
        member.AddRow("Encrypted", s.Encrypted ? "yes" : "NO (insecure)");
        member.AddRow("Uptime", TimeSpan.FromSeconds(Math.Round(s.UptimeSeconds)).ToString("c", c));
        member.AddRow("Table size", $"{s.TableSize.ToString("N0", c)} connections ({s.TableEntries.ToString("N0", c)} entries with tombstones)");
        member.AddRow("Pending", s.Pending.ToString("N0", c));
        member.AddRow("Last sequence sent", s.LastDataSequence.ToString(c));
        member.AddRow("Data plane", Markup.Escape(s.DataPlane.Source + (s.DataPlane.LiveConnections is { } live
            ? $" ({live.ToString("N0", c)} live, {s.DataPlane.ChangesSubmitted.ToString("N0", c)} submitted{(s.DataPlane.Finished ? ", finished" : "")})"
            : "")));
        console.Write(member);
        AdaptiveStatusView.Render(s, console);

        var peers = new Spectre.Console.Table().Title("Peers").AddColumns("Member", "Address", "State", "Member state", "Last heard", "Epoch", "Priority", "Received through", "Acked through", "Lag");
        foreach (var p in s.Peers)
        {
            peers.AddRow(
                p.MemberId.ToString(c), p.Address, p.Alive ? "alive" : p.LastHeardMs is null ? "never heard" : "down", p.MemberState,
                p.LastHeardMs is { } ms ? $"{(ms / 1000.0).ToString("0.000", c)} s ago" : "-", p.Epoch.ToString(c), p.Priority.ToString(c),
                p.ReceivedThrough.ToString(c), p.AckedThrough.ToString(c),
                $"{p.ReplicationLagDatagrams.ToString(c)} dgrams, {(p.ReplicationLagMs / 1000.0).ToString("0.000", c)} s{(p.Lagging ? " LAGGING" : "")}{(p.InSendWindow ? "" : " (out of window)")}");
        }

        console.Write(peers);
        if (s.Peers.Any(p => p.Links.Count > 0))
        {
            var links = new Spectre.Console.Table().Title("Sync links").AddColumns("Member", "Link", "Peer address", "Link state", "Last heard", "Peer hears us", "Carrying", "Switches");
            foreach (var p in s.Peers)
            {
                foreach (var l in p.Links)
                {
                    links.AddRow(p.MemberId.ToString(c), l.Id.ToString(c), Markup.Escape(l.Address), l.Up ? "up" : "DOWN",
                        l.LastHeardMs is { } heard ? $"{(heard / 1000.0).ToString("0.000", c)} s ago" : "-", l.PeerHearsUs ? "yes" : "no",
                        l.Carrying ? "*" : "", p.LinkSwitches.ToString(c));
                }
            }

            console.Write(links);
        }

        var stats = new Spectre.Console.Table().Title("Sync statistics").AddColumn("Counter").AddColumn(new TableColumn("Value").RightAligned());
        foreach (var (name, value) in s.Counters)
        {
            if (value != 0 || !name.StartsWith("drops_", StringComparison.Ordinal))
            {
                stats.AddRow(Markup.Escape(name), value.ToString("N0", c));
            }
        }

        foreach (var (name, value) in s.FullSync)
        {
            stats.AddRow(Markup.Escape(name), value.ToString("N0", c));
        }

        console.Write(stats);
    }

    private static long Get(IReadOnlyDictionary<string, long> values, string name) => values.TryGetValue(name, out var v) ? v : 0;
}
