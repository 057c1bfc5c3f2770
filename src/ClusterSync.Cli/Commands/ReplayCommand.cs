using System.CommandLine;
using System.Text.Json;
using ClusterSync.Node.Configuration;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync replay --trace FILE --config NODE.json [--speed X]</c>: runs the node of that configuration with the
/// <c>trace-replay</c> data-plane plugin replaying the trace (docs/trace-format.md) while the node is Active — the
/// node command with <c>dataPlane</c> overridden. Exit 2 when the trace or the configuration is bad.
/// </summary>
internal static class ReplayCommand
{
    public const string PluginName = "trace-replay";

    public static Command Create()
    {
        var trace = new Option<FileInfo>("--trace", "-t") { Description = "The trace CSV to replay (docs/trace-format.md; `clustersync generate` writes one).", Required = true };
        var config = new Option<FileInfo>("--config", "-c") { Description = "The node configuration file; its dataPlane section is replaced by the trace replay.", Required = true };
        var speed = new Option<double>("--speed") { Description = "Trace seconds per wall-clock second (60: an hour of trace in a minute).", DefaultValueFactory = _ => 1 };
        var drain = new Option<bool>("--drain") { Description = "Also play the destroys after the trace's last start (the table ends empty)." };
        var command = new Command("replay", "Run a node whose data plane replays a connection trace (the trace-replay plugin).") { trace, config, speed, drain };
        command.SetAction((parse, cancellationToken) =>
        {
            var file = parse.GetValue(trace)!;
            double factor = parse.GetValue(speed);
            if (!file.Exists)
            {
                throw ConfigurationErrors.At("--trace", $"no such file '{file.FullName}'");
            }

            if (factor is not (> 0 and <= 1e9))
            {
                throw ConfigurationErrors.At("--speed", $"expected a factor in (0, 1e9], found {factor}");
            }

            var settings = JsonSerializer.SerializeToElement(new Dictionary<string, object>
            {
                ["trace"] = file.FullName,
                ["speed"] = factor,
                ["drain"] = parse.GetValue(drain),
            });
            return NodeCommand.RunAsync(parse.GetValue(config)!.FullName,
                c => c with { DataPlane = new DataPlaneConfig { Source = DataPlaneConfig.SourcePlugin, Plugin = PluginName, Settings = settings } },
                cancellationToken);
        });
        return command;
    }
}
