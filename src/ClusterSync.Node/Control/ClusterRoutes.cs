using System.Globalization;
using System.Text.Json;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Runtime;

namespace ClusterSync.Node.Control;

/// <summary>What a control-endpoint route answers: HTTP status, content type, body.</summary>
internal readonly record struct RouteResponse(int Status, string ContentType, string Body)
{
    private static readonly JsonSerializerOptions s_compact = new(JsonSerializerDefaults.Web);

    /// <summary>Compact JSON (a report may list every connection).</summary>
    public static RouteResponse Json<T>(T value) => new(200, "application/json; charset=utf-8", JsonSerializer.Serialize(value, s_compact) + "\n");

    public static RouteResponse Text(int status, string body) => new(status, "text/plain; charset=utf-8", body);
}

/// <summary>
/// Cluster-lifecycle routes of the control endpoint, kept out of the HTTP server itself:
/// <c>POST /generator/pause</c>, <c>POST /generator/resume[?rate=N]</c> (hold or release the workload generator, and
/// optionally change its rate: a test or an operator quiesces a member to compare tables, then lets it churn again)
/// and <c>GET /ownership</c> (load-sharing ownership of every connection).
/// </summary>
internal static class ClusterRoutes
{
    /// <summary>The answer for <paramref name="path"/>, or null when it is not one of these routes.</summary>
    public static RouteResponse? TryHandle(NodeRuntime node, string method, string path, string query)
    {
        switch (path)
        {
            case "/generator/pause":
            case "/generator/resume":
                if (method != "POST")
                {
                    return RouteResponse.Text(405, "only POST\n");
                }

                if (node.Config.Config.DataPlane.Source != DataPlaneConfig.SourceGenerator)
                {
                    return RouteResponse.Text(409, "this node's data plane is not the generator\n");
                }

                double? rate = null;
                if (QueryValue(query, "rate") is { } text)
                {
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double r) || !double.IsFinite(r) || r <= 0)
                    {
                        return RouteResponse.Text(400, $"rate: expected a positive number of changes per second, found '{text}'\n");
                    }

                    rate = r;
                }

                bool pause = path == "/generator/pause";
                node.SetGenerator(pause, rate);
                return RouteResponse.Text(200, pause ? "pausing\n" : "running\n");
            case "/ownership":
                if (method is not ("GET" or "HEAD"))
                {
                    return RouteResponse.Text(405, "only GET\n");
                }

                bool list = QueryValue(query, "connections") is "true" or "1";
                return RouteResponse.Json(OwnershipReport.Build(node, list));
            default:
                return null;
        }
    }

    private static string? QueryValue(string query, string name)
    {
        foreach (var part in query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && part.AsSpan(0, eq).SequenceEqual(name))
            {
                return Uri.UnescapeDataString(part[(eq + 1)..]);
            }
        }

        return null;
    }
}
