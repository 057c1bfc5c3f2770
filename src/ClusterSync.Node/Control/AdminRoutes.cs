using System.Globalization;
using System.Text.Json;
using ClusterSync.Membership;
using ClusterSync.Node.Control.Http;
using ClusterSync.Node.Runtime;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Control;

/// <summary>
/// Maintenance and manual switchover (<c>clustersync admin down|up|failover --to N</c>): <c>POST /admin/down</c>,
/// <c>POST /admin/up</c>, <c>POST /admin/failover?to=N</c>. State-changing, so they need the control token like every
/// POST (<see cref="ControlAccess"/>). Each asks the membership controller (<see cref="MembershipController.RequestDown"/>,
/// ...), which acts on its next control ticks, and answers once the request is done or abandoned (at most
/// <see cref="MaxWait"/>; longer: 202, follow <c>/status</c>) with an <see cref="AdminDocument"/>: 200 done, 409 refused
/// or abandoned, 400 for a malformed request (unknown member, bad query).
/// </summary>
internal static partial class AdminRoutes
{
    public const string DownPath = "/admin/down";
    public const string UpPath = "/admin/up";
    public const string FailoverPath = "/admin/failover";

    /// <summary>The longest a request waits for its outcome before answering 202 (below the server's request deadline).</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(20);

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The answer for <paramref name="path"/>, or null when it is not one of these routes.</summary>
    public static async ValueTask<ControlResponse?> TryHandleAsync(NodeRuntime node, string method, string path, string query, TimeProvider time, ILogger logger)
    {
        if (path is not (DownPath or UpPath or FailoverPath))
        {
            return null;
        }

        if (method != "POST")
        {
            return ControlResponse.Text(405, "only POST\n");
        }

        if (!ClusterRoutes.TryParseQuery(path, query, path == FailoverPath ? ["to"] : [], out var parameters, out var error))
        {
            return error;
        }

        var membership = node.Membership;
        if (membership is null)
        {
            return ControlResponse.Text(503, "the node is starting\n");
        }

        Task<AdminResult> request;
        if (path == FailoverPath)
        {
            if (!parameters.TryGetValue("to", out var text))
            {
                return ControlResponse.Text(400, "to: expected the member id to hand the Active role to (to=N)\n");
            }

            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int to)
                || (to != node.Model.Self.Id && !node.Model.PeerMembers.Any(m => m.Id == to)))
            {
                return ControlResponse.Text(400, $"to: expected the id of a member of this cluster ({string.Join(", ", node.Model.Config.Cluster.Members.Select(m => m.Id))}), found '{text}'\n");
            }

            request = membership.RequestFailover((byte)to);
        }
        else
        {
            request = path == DownPath ? membership.RequestDown() : membership.RequestUp();
        }

        Log.Requested(logger, path, parameters.TryGetValue("to", out var target) ? $" to member {target}" : "");
        AdminResult result;
        try
        {
            result = await request.WaitAsync(MaxWait, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return Json(202, new AdminDocument
            {
                Outcome = "InProgress",
                Message = $"not done within {MaxWait.TotalSeconds:0} s; follow /status",
                State = membership.State.ToString(),
            });
        }

        Log.Answered(logger, path, result.Outcome, result.Message);
        return Json(result.Outcome == AdminOutcome.Done ? 200 : 409, new AdminDocument
        {
            Outcome = result.Outcome.ToString(),
            Message = result.Message,
            State = result.State.ToString(),
            Successor = result.Successor == 0 ? null : result.Successor,
            HandoverMs = result.HandoverMilliseconds,
            SwitchMs = result.SwitchMilliseconds,
        });
    }

    private static ControlResponse Json(int status, AdminDocument document)
        => new(status, ControlResponse.JsonContent, JsonSerializer.SerializeToUtf8Bytes(document, s_json));

    private static partial class Log
    {
        [LoggerMessage(4110, LogLevel.Warning, "Control endpoint: {Path} requested{Target}")]
        public static partial void Requested(ILogger logger, string path, string target);

        [LoggerMessage(4111, LogLevel.Warning, "Control endpoint: {Path}: {Outcome}: {Message}")]
        public static partial void Answered(ILogger logger, string path, AdminOutcome outcome, string message);
    }
}

/// <summary>The answer of an <c>/admin/...</c> request.</summary>
public sealed record AdminDocument
{
    /// <summary><c>Done</c>, <c>Refused</c>, <c>Failed</c> or <c>InProgress</c>.</summary>
    public string Outcome { get; init; } = "";

    public string Message { get; init; } = "";

    /// <summary>This member's state when the outcome was decided.</summary>
    public string State { get; init; } = "";

    /// <summary>The member that took the Active role over, if this request moved it.</summary>
    public int? Successor { get; init; }

    /// <summary>From the request until the successor had acknowledged every change (ms).</summary>
    public double HandoverMs { get; init; }

    /// <summary>From this member leaving the Active role until the successor was seen Active (ms).</summary>
    public double SwitchMs { get; init; }
}
