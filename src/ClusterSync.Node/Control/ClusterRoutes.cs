using System.Globalization;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Control.Http;
using ClusterSync.Node.Runtime;

namespace ClusterSync.Node.Control;

/// <summary>
/// Cluster-lifecycle routes of the control endpoint, kept out of the HTTP server itself:
/// <c>POST /generator/pause</c>, <c>POST /generator/resume[?rate=N]</c> (hold or release the workload generator, and
/// optionally change its rate: a test or an operator quiesces a member to compare tables, then lets it churn again)
/// and <c>GET /ownership[?connections=true]</c> (load-sharing ownership; with every connection, streamed). Every query
/// parameter is validated: an unknown, repeated or malformed one is a 400 naming it and what was expected.
/// </summary>
internal static class ClusterRoutes
{
    /// <summary>Largest generator rate a request may set (as <c>dataPlane.generator.changesPerSecond</c>).</summary>
    public const double MaxRate = 10_000_000;

    /// <summary>The answer for <paramref name="path"/>, or null when it is not one of these routes.</summary>
    public static ControlResponse? TryHandle(NodeRuntime node, string method, string path, string query)
    {
        switch (path)
        {
            case "/generator/pause":
            case "/generator/resume":
            {
                if (method != "POST")
                {
                    return ControlResponse.Text(405, "only POST\n");
                }

                bool pause = path == "/generator/pause";
                if (!TryParseQuery(path, query, pause ? [] : ["rate"], out var parameters, out var error))
                {
                    return error;
                }

                double? rate = null;
                if (parameters.TryGetValue("rate", out var text))
                {
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double r) || !double.IsFinite(r) || r <= 0 || r > MaxRate)
                    {
                        return ControlResponse.Text(400, $"rate: expected a finite number of changes per second in (0, {MaxRate.ToString(CultureInfo.InvariantCulture)}], found '{text}'\n");
                    }

                    rate = r;
                }

                if (node.Model.Config.DataPlane.Source != DataPlaneConfig.SourceGenerator)
                {
                    return ControlResponse.Text(409, "this node's data plane is not the generator\n");
                }

                node.SetGenerator(pause, rate);
                return ControlResponse.Text(200, pause ? "pausing\n" : "running\n");
            }

            case "/ownership":
            {
                if (method is not ("GET" or "HEAD"))
                {
                    return ControlResponse.Text(405, "only GET\n");
                }

                if (!TryParseQuery(path, query, ["connections"], out var parameters, out var error))
                {
                    return error;
                }

                bool list = false;
                if (parameters.TryGetValue("connections", out var text))
                {
                    if (text is not ("true" or "false" or "1" or "0"))
                    {
                        return ControlResponse.Text(400, $"connections: expected 'true' or 'false', found '{text}'\n");
                    }

                    list = text is "true" or "1";
                }

                return list
                    ? ControlResponse.Streamed(ControlResponse.JsonContent, (stream, token) => OwnershipReport.WriteAsync(node, stream, token))
                    : new ControlResponse(200, ControlResponse.JsonContent, OwnershipReport.Serialize(OwnershipReport.Build(node, withList: false)));
            }

            case "/telemetry/export":
            {
                if (method is not ("GET" or "HEAD"))
                {
                    return ControlResponse.Text(405, "only GET\n");
                }

                if (!TryParseQuery(path, query, ["format"], out var parameters, out var error))
                {
                    return error;
                }

                string format = parameters.GetValueOrDefault("format", "lifecycle");
                if (format is not ("lifecycle" or "trace"))
                {
                    return ControlResponse.Text(400, $"format: expected 'lifecycle' or 'trace', found '{format}'\n");
                }

                if (node.Adaptive.Recorder is not { } recorder)
                {
                    return ControlResponse.Text(409, "this node captures no telemetry (telemetry.enabled is false)\n");
                }

                // Streamed as the database is read; one LiteDB reader beside the recorder's writer thread.
                return ControlResponse.Streamed("text/csv; charset=utf-8", async (stream, token) =>
                {
                    var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 65536, leaveOpen: true);
                    await using (writer.ConfigureAwait(false))
                    {
                        await Task.Run(() => recorder.Export(writer, format == "trace"), token).ConfigureAwait(false);
                        await writer.FlushAsync(token).ConfigureAwait(false);
                    }
                });
            }

            default:
                return null;
        }
    }

    /// <summary>
    /// Splits <paramref name="query"/> into name → value; false (with the 400 to answer) on a name not in
    /// <paramref name="allowed"/>, a name given twice, a missing value or a malformed escape.
    /// </summary>
    public static bool TryParseQuery(string path, string query, IReadOnlyList<string> allowed, out Dictionary<string, string> parameters, out ControlResponse error)
    {
        parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        error = default;
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            string name, value;
            try
            {
                name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
                value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            }
            catch (UriFormatException)
            {
                error = ControlResponse.Text(400, $"query: malformed escape in '{part}'\n");
                return false;
            }

            if (!allowed.Contains(name, StringComparer.Ordinal))
            {
                error = ControlResponse.Text(400, allowed.Count == 0
                    ? $"{name}: unknown query parameter; {path} takes none\n"
                    : $"{name}: unknown query parameter; {path} takes {string.Join(", ", allowed)}\n");
                return false;
            }

            if (eq < 0 || value.Length == 0)
            {
                error = ControlResponse.Text(400, $"{name}: expected a value ({name}=...)\n");
                return false;
            }

            if (!parameters.TryAdd(name, value))
            {
                error = ControlResponse.Text(400, $"{name}: given more than once; expected it at most once\n");
                return false;
            }
        }

        return true;
    }
}
