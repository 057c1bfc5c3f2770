using System.CommandLine;
using System.Text.Json;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Plugins;
using Spectre.Console;

namespace ClusterSync.Cli.Commands;

/// <summary><c>clustersync plugins [--dir DIR] [--json]</c>: the plugins found, loaded, refused and disabled, with reasons.</summary>
internal static class PluginsCommand
{
    public static Command Create()
    {
        var dir = new Option<DirectoryInfo?>("--dir", "-d") { Description = "The plugin directory (default: plugins/ next to the clustersync binary)." };
        var json = new Option<bool>("--json") { Description = "Print a JSON array: name, kind, version, status, reason (and contractVersion, path)." };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "A node configuration file: use its plugins.directory and plugins.disabled." };
        var command = new Command("plugins", "List the plugins found, loaded, refused and disabled, and why.") { dir, json, config };
        command.SetAction(parse =>
        {
            IReadOnlyCollection<string> disabled = [];
            string directory = PluginCatalog.DefaultDirectory;
            if (parse.GetValue(config) is { } file)
            {
                // Bad configuration (a plugin it names included): ConfigurationException, exit 2 with every error. The
                // model's resolved plugins are released here; the listing loads the directory on its own.
                using var loaded = NodeConfigLoader.Load(file.FullName);
                directory = loaded.Config.Plugins.ResolveDirectory(loaded.Path);
                disabled = [.. loaded.Config.Plugins.Disabled];
            }

            if (parse.GetValue(dir) is { } given)
            {
                directory = PathOptions.InputDirectory("--dir", given.FullName);
            }

            return Run(directory, parse.GetValue(json), Console.Out, disabled);
        });
        return command;
    }

    public static int Run(string directory, bool json, TextWriter output, IReadOnlyCollection<string>? disabled = null)
    {
        using var catalog = PluginCatalog.Load(directory, disabled: disabled);
        var plugins = catalog.Plugins;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(plugins, new JsonSerializerOptions(NodeConfigLoader.JsonOptions) { WriteIndented = true }));
            return CommandLine.Success;
        }

        output.WriteLine($"Plugins in {catalog.Directory}: {plugins.Count} found, {plugins.Count(p => p.Status == PluginInfo.Loaded)} loaded, {plugins.Count(p => p.Status == PluginInfo.Refused)} refused");
        if (plugins.Count == 0)
        {
            return CommandLine.Success;
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = 160;
        var table = new Spectre.Console.Table().Border(TableBorder.Simple).AddColumns("name", "kind", "version", "status", "reason");
        foreach (var p in plugins)
        {
            table.AddRow(Markup.Escape(p.Name), p.Kind, Markup.Escape(p.Version ?? "-"), p.Status, Markup.Escape(p.Reason ?? ""));
        }

        console.Write(table);
        return CommandLine.Success;
    }
}
