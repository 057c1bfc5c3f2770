using System.CommandLine;
using System.Text.Json;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// What every <c>clustersync bench</c> subcommand shares: its <c>--json</c> switch, refusals on stderr named after the
/// benchmark, progress on stderr unless <c>--json</c> (stdout then holds the JSON object only), and the report.
/// </summary>
internal sealed class BenchCommand
{
    private BenchCommand(string name, bool json)
    {
        Name = name;
        Json = json;
    }

    /// <summary>The benchmark's name (<c>bench &lt;name&gt;</c>).</summary>
    public string Name { get; }

    /// <summary><c>--json</c> was given.</summary>
    public bool Json { get; }

    /// <summary>Where progress goes: stderr, or nowhere with <c>--json</c>.</summary>
    public TextWriter? Progress => Json ? null : Console.Error;

    /// <summary>The subcommand: <paramref name="options"/>, then <c>--json</c>; <paramref name="action"/> returns the exit code.</summary>
    public static Command Create(string name, string description, Option[] options, Func<ParseResult, BenchCommand, int> action)
    {
        var (command, json) = Declare(name, description, options);
        command.SetAction(parse => action(parse, new BenchCommand(name, parse.GetValue(json))));
        return command;
    }

    /// <summary>The same for an asynchronous benchmark.</summary>
    public static Command Create(string name, string description, Option[] options, Func<ParseResult, BenchCommand, CancellationToken, Task<int>> action)
    {
        var (command, json) = Declare(name, description, options);
        command.SetAction((parse, token) => action(parse, new BenchCommand(name, parse.GetValue(json)), token));
        return command;
    }

    /// <summary>Writes <c>clustersync: bench &lt;name&gt;: <paramref name="message"/></c> to stderr; returns <paramref name="exitCode"/>.</summary>
    public int Refuse(string message, int exitCode = CommandLine.BadInput)
    {
        Console.Error.WriteLine($"clustersync: bench {Name}: {message}");
        return exitCode;
    }

    /// <summary>Prints the result (one JSON object, or a line per entry, its name padded to <paramref name="nameWidth"/>); Success when <paramref name="passed"/>, else Failure.</summary>
    public int Report(Dictionary<string, object> result, int nameWidth, bool passed)
    {
        Console.WriteLine(Json
            ? JsonSerializer.Serialize(result, BenchJson.Options)
            : string.Join(Environment.NewLine, result.Select(kv => $"{kv.Key.PadRight(nameWidth)} {kv.Value}")));
        return passed ? CommandLine.Success : CommandLine.Failure;
    }

    private static (Command Command, Option<bool> Json) Declare(string name, string description, Option[] options)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command(name, description);
        foreach (var option in options)
        {
            command.Options.Add(option);
        }

        command.Options.Add(json);
        return (command, json);
    }
}
