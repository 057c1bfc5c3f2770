namespace ClusterSync.Cli.Tests.Commands;

/// <summary>What <c>--help</c> says, and how a command line the parser refuses ends (exit 2, the reason, where to look).</summary>
public sealed class UsageTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    /// <summary>Every command <c>clustersync</c> offers (the README's command list).</summary>
    private static readonly string[] s_commands = ["demo", "node", "replay", "status", "keygen", "plugins", "telemetry", "bench", "generate", "simulate", "train", "soak", "admin"];


    [Fact]
    public async Task Help_TopLevel_Exit0ListingEveryCommand()
    {
        await using var cli = await CliProcess.RunAsync(s_timeout, "--help");

        Assert.True(cli.ExitCode == 0, cli.Output);
        Assert.Contains("clustersync [command] [options]", cli.Stdout, StringComparison.Ordinal);
        var listed = cli.Stdout[cli.Stdout.IndexOf("Commands:", StringComparison.Ordinal)..].Split('\n')
            .Skip(1).Where(l => l.StartsWith("  ", StringComparison.Ordinal) && l.Trim().Length > 0)
            .Select(l => l.Trim().Split(' ')[0]).ToList();
        Assert.Equal(s_commands.Order(), listed.Order());
    }

    [Theory]
    [InlineData("demo", "--policy <policy>")]
    [InlineData("node", "-c, --config <config> (REQUIRED)")]
    [InlineData("replay", "--trace")]
    [InlineData("status", "[default: http://127.0.0.1:9116]")]
    [InlineData("keygen", "-o, --out <out> (REQUIRED)")]
    [InlineData("plugins", "--json")]
    [InlineData("telemetry", "export")]
    [InlineData("bench", "failover")]
    [InlineData("generate", "--out")]
    [InlineData("simulate", "-t, --trace <trace> (REQUIRED)")]
    [InlineData("train", "--trace")]
    [InlineData("soak", "--seeds <seeds> (REQUIRED)")]
    [InlineData("admin", "failover")]
    [InlineData("admin failover", "--to <to> (REQUIRED)")]
    public async Task Help_EachCommand_Exit0WithItsUsageLineAndMainOption(string command, string expected)
    {
        await using var cli = await CliProcess.RunAsync(s_timeout, [.. command.Split(' '), "--help"]);

        Assert.True(cli.ExitCode == 0, cli.Output);
        Assert.Contains("Description:", cli.Stdout, StringComparison.Ordinal);
        Assert.Contains($"clustersync {command} ", cli.Stdout, StringComparison.Ordinal);
        Assert.Contains(expected, cli.Stdout, StringComparison.Ordinal);
        Assert.Equal("", cli.Stderr);
    }

    [Theory]
    [InlineData("bogus", "Unrecognized command or argument 'bogus'")]
    [InlineData("node", "Option '--config' is required")]
    [InlineData("keygen", "Option '--out' is required")]
    [InlineData("soak --seeds many", "many")]
    [InlineData("admin failover", "Option '--to' is required")]
    public async Task Parse_BadCommandLine_Exit2WithReasonAndHelpHint(string args, string expected)
    {
        await using var cli = await CliProcess.RunAsync(s_timeout, args.Split(' '));

        Assert.True(cli.ExitCode == 2, $"exit {cli.ExitCode}: {cli.Output}");
        Assert.Contains(expected, cli.Stderr, StringComparison.Ordinal);
        Assert.Contains("Run 'clustersync --help' for usage.", cli.Stderr, StringComparison.Ordinal);
        Assert.Equal("", cli.Stdout);
    }
}
