using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Node.Control;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync admin down|up|failover --to N</c>: maintenance and manual switchover through a running node's control
/// endpoint (<c>POST /admin/...</c>, with the control token). Exit 0 when the node reports the request done, 1 when it
/// refused or abandoned it (or cannot be reached), 2 for bad input.
/// </summary>
internal static class AdminCommand
{
    public static Command Create()
    {
        var admin = new Command("admin", "Maintenance and manual switchover of a running node (through its control endpoint; needs the control token).");
        admin.Subcommands.Add(Build("down", "Leave the Active role gracefully (every pending change synchronized to the successor first) and stay out of elections.", withTarget: false));
        admin.Subcommands.Add(Build("up", "Back into the elections after 'admin down': the member rejoins as Standby.", withTarget: false));
        admin.Subcommands.Add(Build("failover", "Hand the Active role to member N (run against the Active member's endpoint).", withTarget: true));
        return admin;
    }

    private static Command Build(string name, string description, bool withTarget)
    {
        var endpoint = new Option<string>("--endpoint", "-e")
        {
            Description = "The node's control endpoint.",
            DefaultValueFactory = _ => ControlClient.DefaultEndpoint,
        };
        var tokenFile = new Option<string?>("--token-file") { Description = "The node's control token file (node.control.tokenFile)." };
        var caFile = new Option<string?>("--ca-file")
        {
            Description = "For an https endpoint: the certificate (PEM) that signed the node's certificate, or the node's own self-signed one; default: the system's trusted roots.",
        };
        var json = new Option<bool>("--json") { Description = "Print the node's answer (JSON)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the node's answer.", DefaultValueFactory = _ => 30 };
        var to = new Option<int>("--to") { Description = "The member to hand the Active role to.", Required = true };
        var command = new Command(name, description) { endpoint, tokenFile, caFile, json, timeout };
        if (withTarget)
        {
            command.Options.Add(to);
        }

        command.SetAction((parse, cancellationToken) => RunAsync(name, withTarget ? parse.GetValue(to) : null, parse.GetValue(endpoint)!, parse.GetValue(tokenFile),
            parse.GetValue(caFile), parse.GetValue(json), parse.GetValue(timeout), Console.Out, cancellationToken));
        return command;
    }

    public static async Task<int> RunAsync(string action, int? to, string endpoint, string? tokenFile, string? caFile, bool json, double timeoutSeconds, TextWriter output,
        CancellationToken cancellationToken)
    {
        if (to is < 1 or > 255)
        {
            throw ConfigurationErrors.At("--to", $"expected a member id 1 to 255, found {to}");
        }

        ControlAnswer? reply;
        using (var client = ControlClient.Open(endpoint, tokenFile, caFile, timeoutSeconds))
        {
            reply = await client.SendAsync(HttpMethod.Post, to is { } n ? $"/admin/{action}?to={n.ToString(CultureInfo.InvariantCulture)}" : $"/admin/{action}", cancellationToken)
                .ConfigureAwait(false);
        }

        if (reply is null)
        {
            return CommandLine.Failure;
        }

        int status = reply.Status;
        string body = reply.Body;
        if (status is 401 or 403)
        {
            return await reply.RefusedAsync().ConfigureAwait(false);
        }

        if (status == 400)
        {
            // The node names its query parameter ("to: expected ..."): the user typed --to.
            string why = body.Trim();
            why = to is null ? why : "--to: " + (why.StartsWith("to: ", StringComparison.Ordinal) ? why["to: ".Length..] : why);
            await Console.Error.WriteLineAsync($"clustersync: {why}").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        AdminDocument? answer = null;
        try
        {
            answer = JsonSerializer.Deserialize<AdminDocument>(body, ControlEndpoint.StatusJson);
        }
        catch (JsonException)
        {
        }

        if (answer is null)
        {
            return await reply.RefusedAsync().ConfigureAwait(false);
        }

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(answer, ControlEndpoint.StatusJson)).ConfigureAwait(false);
        }
        else
        {
            var c = CultureInfo.InvariantCulture;
            string timing = answer.Successor is null ? "" : $" (hand-over {answer.HandoverMs.ToString("0.0", c)} ms, successor Active {answer.SwitchMs.ToString("0.0", c)} ms later)";
            var line = $"admin {action}: {answer.Outcome}: {answer.Message}{timing}; this member is {answer.State}";
            await (answer.Outcome == "Done" ? output : Console.Error).WriteLineAsync(line).ConfigureAwait(false);
        }

        return status == 200 ? CommandLine.Success : CommandLine.Failure;
    }
}
