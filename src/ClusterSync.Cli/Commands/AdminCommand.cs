using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ClusterSync.Node.Configuration;
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
            DefaultValueFactory = _ => $"http://127.0.0.1:{ControlConfig.DefaultPort}",
        };
        var tokenFile = new Option<string?>("--token-file") { Description = "The node's control token file (node.control.tokenFile)." };
        var json = new Option<bool>("--json") { Description = "Print the node's answer (JSON)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the node's answer.", DefaultValueFactory = _ => 30 };
        var to = new Option<int>("--to") { Description = "The member to hand the Active role to.", Required = true };
        var command = new Command(name, description) { endpoint, tokenFile, json, timeout };
        if (withTarget)
        {
            command.Options.Add(to);
        }

        command.SetAction((parse, cancellationToken) => RunAsync(name, withTarget ? parse.GetValue(to) : null, parse.GetValue(endpoint)!, parse.GetValue(tokenFile),
            parse.GetValue(json), parse.GetValue(timeout), Console.Out, cancellationToken));
        return command;
    }

    public static async Task<int> RunAsync(string action, int? to, string endpoint, string? tokenFile, bool json, double timeoutSeconds, TextWriter output, CancellationToken cancellationToken)
    {
        string? token = null;
        if (tokenFile is not null)
        {
            try
            {
                token = ControlTokenFile.Load(Path.GetFullPath(tokenFile));
            }
            catch (ConfigurationException ex)
            {
                await Console.Error.WriteLineAsync($"clustersync: --token-file: {ex.Message}").ConfigureAwait(false);
                return CommandLine.BadInput;
            }
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var baseUri) || baseUri.Scheme != Uri.UriSchemeHttp)
        {
            await Console.Error.WriteLineAsync($"clustersync: --endpoint: expected an http URL like http://127.0.0.1:{ControlConfig.DefaultPort}, found '{endpoint}'").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        if (!(timeoutSeconds > 0 && timeoutSeconds <= 300))
        {
            await Console.Error.WriteLineAsync($"clustersync: --timeout: expected seconds in (0, 300], found {timeoutSeconds}").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        if (to is < 1 or > 255)
        {
            await Console.Error.WriteLineAsync($"clustersync: --to: expected a member id 1 to 255, found {to}").ConfigureAwait(false);
            return CommandLine.BadInput;
        }

        var url = new Uri(baseUri, to is { } n ? $"/admin/{action}?to={n.ToString(CultureInfo.InvariantCulture)}" : $"/admin/{action}");
        int status;
        string body;
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(timeoutSeconds) })
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, url);
                if (token is not null)
                {
                    request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
                }

                using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                status = (int)response.StatusCode;
                body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                var why = ex is TaskCanceledException ? $"no answer within {timeoutSeconds} s" : ex.Message;
                await Console.Error.WriteLineAsync($"clustersync: cannot reach the node at {url}: {why} (is 'clustersync node' running with this node.control.port?)").ConfigureAwait(false);
                return CommandLine.Failure;
            }
        }

        if (status is 401 or 403)
        {
            await Console.Error.WriteLineAsync($"clustersync: {url}: the node answered {status}: {body.Trim()}{(status == 401 ? " (pass the node's token with --token-file)" : "")}").ConfigureAwait(false);
            return CommandLine.Failure;
        }

        if (status == 400)
        {
            await Console.Error.WriteLineAsync($"clustersync: {(to is null ? "" : "--to: ")}{body.Trim()}").ConfigureAwait(false);
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
            await Console.Error.WriteLineAsync($"clustersync: {url}: the node answered {status}: {body.Trim()}").ConfigureAwait(false);
            return CommandLine.Failure;
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
