using System.CommandLine;
using ClusterSync.Node;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// <c>clustersync node --config FILE</c>: one member under the Generic Host. The configuration is validated as a whole
/// before anything starts (exit 2 with every error); the engine and the control endpoint are hosted services,
/// stopped cleanly on SIGTERM or Ctrl-C.
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The node configuration file (JSON; see README, Configuration).", Required = true };
        var command = new Command("node", "Run one member of a cluster.") { config };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(config)!.FullName, cancellationToken));
        return command;
    }

    public static async Task<int> RunAsync(string configPath, CancellationToken cancellationToken) => await RunAsync(configPath, null, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs the node of <paramref name="configPath"/>, its settings first overridden by <paramref name="adjust"/> (<c>clustersync replay</c>).</summary>
    public static async Task<int> RunAsync(string configPath, Func<NodeConfig, NodeConfig>? adjust, CancellationToken cancellationToken)
    {
        // A SIGTERM or SIGINT at any point of start-up is a clean stop (exit 0, as after start-up): the signal cancels
        // `stopping` (EarlySignals catches the ones that arrive before System.CommandLine listens), and what has been
        // started is stopped in order.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, EarlySignals.Token);

        // Throws ConfigurationException with every error (exit 2) before anything is bound or started; the model holds
        // the plugins it names, resolved.
        var model = NodeConfigLoader.Load(configPath, adjust);
        if (stopping.IsCancellationRequested)
        {
            model.Dispose();
            return CommandLine.Success;
        }

        // Composes every part of the node (and owns the model from here, also when it throws): what only the machine can
        // refuse is a NodeStartException (exit 1); a damaged epoch or telemetry file a ConfigurationException (exit 2).
        NodeHost node;
        try
        {
            node = NodeHost.Build(model, ConsoleLogging);
        }
        catch (NodeStartException ex)
        {
            await Console.Error.WriteLineAsync($"clustersync: {ex.Message}").ConfigureAwait(false);
            return CommandLine.Failure;
        }

        await using (node.ConfigureAwait(false))
        {
            try
            {
                await node.Host.RunAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Stopped by a signal while starting: the host stopped what it had started.
            }
            catch (NodeStartException ex)
            {
                await Console.Error.WriteLineAsync($"clustersync: {ex.Message}").ConfigureAwait(false);
                return CommandLine.Failure;
            }
        }

        return CommandLine.Success;
    }

    /// <summary>
    /// One line per event on stderr, stopped cleanly on SIGTERM or Ctrl-C (the console lifetime). Under systemd (stderr
    /// is the journal: <c>JOURNAL_STREAM</c> set) the systemd formatter: each line starts with its syslog priority
    /// (<c>&lt;6&gt;</c> information, <c>&lt;4&gt;</c> warning, <c>&lt;3&gt;</c> error), which journald stores as the entry's
    /// PRIORITY (<c>journalctl -u clustersync -p warning</c>), followed by the category and event id; journald stamps the time.
    /// </summary>
    private static void ConsoleLogging(HostApplicationBuilder builder)
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")))
        {
            builder.Logging.AddSystemdConsole(o => o.IncludeScopes = false);
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }

        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
    }
}
