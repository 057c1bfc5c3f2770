using System.Text.RegularExpressions;

namespace ClusterSync.Cli.Tests.Commands;

/// <summary>
/// Every <c>clustersync …</c> command line written in code in the README, docs/, the model card and the source
/// READMEs names a command and options the built CLI has: each command path's <c>--help</c> is asked once and its
/// subcommands and options are compared with what the documents write.
/// </summary>
public sealed partial class DocumentedCommandLineTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Docs_EveryDocumentedCommandAndOption_ExistsInTheCli()
    {
        var invocations = DocumentedInvocations().ToList();
        Assert.True(invocations.Count >= 20, $"found only {invocations.Count} documented command lines: is the scan still reading the docs?");

        var help = new Dictionary<string, CommandHelp>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (where, tokens) in invocations)
        {
            var path = new List<string>();
            var command = await HelpAsync(help, path);
            int i = 0;
            bool unknown = false;
            for (; i < tokens.Count; i++)
            {
                var token = tokens[i];
                if (token.StartsWith('-') || !SubcommandLike().IsMatch(token))
                {
                    break;
                }

                var alternatives = token.Split('|');
                if (!alternatives.All(command.Subcommands.Contains))
                {
                    if (command.Subcommands.Count > 0 && !command.HasArguments)
                    {
                        problems.Add($"{where}: `clustersync {string.Join(' ', path.Append(token))}`: no such command (has: {string.Join(", ", command.Subcommands.Order())})");
                        unknown = true;
                    }

                    break;
                }

                // `admin down|up`: every alternative is a command; options are checked against the first.
                path.Add(alternatives[0]);
                command = await HelpAsync(help, path);
            }

            if (unknown)
            {
                continue;
            }

            foreach (var option in tokens.Skip(i).Select(OptionName).OfType<string>())
            {
                if (!command.Options.Contains(option))
                {
                    problems.Add($"{where}: `clustersync {string.Join(' ', path)}` has no option {option} (has: {string.Join(", ", command.Options.Order())})");
                }
            }
        }

        Assert.True(problems.Count == 0, $"{problems.Count} documented command line(s) the CLI does not accept:\n" + string.Join('\n', problems.Distinct()));
    }

    [Fact]
    public void Scan_CodeSpansAndBlocks_YieldTheirCommandLinesOnly()
    {
        const string text = "Prose about clustersync node processes; `systemctl status clustersync --no-pager`.\n" +
            "Run `clustersync status --json` or `clustersync admin down|up`.\n" +
            "```sh\n# clustersync in a comment is not a command\n" +
            "clustersync simulate --trace x.csv \\\n  --budget 0.01  # two lines\n```\n";

        var found = Invocations("doc.md", text).Select(i => string.Join(' ', i.Tokens)).ToList();

        Assert.Equal(["status --json", "admin down|up", "simulate --trace x.csv --budget 0.01"], found);
    }

    private static IEnumerable<(string Where, IReadOnlyList<string> Tokens)> DocumentedInvocations()
    {
        var root = CliProcess.RepositoryRoot();
        var files = new[] { Path.Combine(root, "README.md") }
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "models"), "*.md"))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "src"), "README.md", SearchOption.AllDirectories))
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "examples"), "*.md", SearchOption.AllDirectories));
        foreach (var file in files.Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            foreach (var invocation in Invocations(Path.GetRelativePath(root, file), File.ReadAllText(file)))
            {
                yield return invocation;
            }
        }
    }

    /// <summary>Command lines in fenced code blocks (shell comments dropped, <c>\</c> continuations joined) and in inline code spans.</summary>
    internal static IEnumerable<(string Where, IReadOnlyList<string> Tokens)> Invocations(string file, string text)
    {
        var lines = text.Split('\n');
        bool fenced = false;
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].TrimEnd('\r');
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }

            if (fenced)
            {
                int first = n;
                var joined = StripComment(line);
                while (joined.EndsWith('\\') && n + 1 < lines.Length)
                {
                    joined = joined[..^1] + " " + StripComment(lines[++n].TrimEnd('\r'));
                }

                foreach (var tokens in CommandLines(joined))
                {
                    yield return ($"{file}:{first + 1}", tokens);
                }

                continue;
            }

            foreach (Match span in InlineCode().Matches(line))
            {
                foreach (var tokens in CommandLines(span.Groups[1].Value.Replace("\\|", "|", StringComparison.Ordinal)))
                {
                    yield return ($"{file}:{n + 1}", tokens);
                }
            }
        }
    }

    private static string StripComment(string line)
    {
        var m = ShellComment().Match(line);
        return (m.Success ? line[..m.Index] : line).TrimEnd();
    }

    private static IEnumerable<IReadOnlyList<string>> CommandLines(string code)
    {
        foreach (Match m in Invocation().Matches(code))
        {
            var rest = code[(m.Index + m.Length)..];
            // One command line ends where the shell would end it.
            int end = rest.IndexOfAny([';', '&', '>', '`']);
            rest = end >= 0 ? rest[..end] : rest;
            var pipe = PipeToOtherCommand().Match(rest);
            rest = pipe.Success ? rest[..pipe.Index] : rest;
            var tokens = rest.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
                .Select(t => t.Trim('[', ']', '(', ')', ',', '"', '\''))
                .Where(t => t.Length > 0)
                .ToList();
            if (tokens.Count > 0)
            {
                yield return tokens;
            }
        }
    }

    private static string? OptionName(string token)
    {
        var m = Option().Match(token);
        return m.Success ? m.Groups[1].Value : null;
    }

    private static async Task<CommandHelp> HelpAsync(Dictionary<string, CommandHelp> cache, List<string> path)
    {
        var key = string.Join(' ', path);
        if (cache.TryGetValue(key, out var known))
        {
            return known;
        }

        await using var cli = await CliProcess.RunAsync(s_timeout, [.. path, "--help"]);
        Assert.True(cli.ExitCode == 0, $"clustersync {key} --help: exit {cli.ExitCode}: {cli.Output}");
        var parsed = CommandHelp.Parse(cli.Stdout);
        cache[key] = parsed;
        return parsed;
    }

    /// <summary>What one command's <c>--help</c> lists.</summary>
    private sealed record CommandHelp(HashSet<string> Subcommands, HashSet<string> Options, bool HasArguments)
    {
        public static CommandHelp Parse(string help)
        {
            var subcommands = new HashSet<string>(StringComparer.Ordinal);
            var options = new HashSet<string>(StringComparer.Ordinal);
            bool hasArguments = false;
            string section = "";
            foreach (var raw in help.Split('\n'))
            {
                var line = raw.TrimEnd('\r');
                if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
                {
                    section = line.Trim();
                    hasArguments |= section == "Arguments:";
                    continue;
                }

                // "  -c, --config <config> (REQUIRED)  description": the names before the description's gap.
                var names = line.Trim().Split("  ")[0];
                if (section == "Commands:" && names.Length > 0)
                {
                    subcommands.Add(names.Split(' ')[0]);
                }
                else if (section == "Options:")
                {
                    foreach (var name in names.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries).Where(n => n.StartsWith('-')))
                    {
                        options.Add(name);
                    }
                }
            }

            return new CommandHelp(subcommands, options, hasArguments);
        }
    }

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"(^|\s)#(\s|$)")]
    private static partial Regex ShellComment();

    // Where a command starts: the line's start, after a shell separator, `sudo`, a prompt, `dotnet` or `exec`; not as
    // an argument of another command (`systemctl status clustersync`, `docker run ... clustersync`).
    [GeneratedRegex(@"(?:^\s*|(?<=[;&|(]\s*)|(?<=\b(?:sudo|dotnet|exec)\s+)|(?<=\$\s*))(?:[\w.-]*/)*clustersync(?:\.dll)?(?=\s)")]
    private static partial Regex Invocation();

    [GeneratedRegex(@"\s\|\s")]
    private static partial Regex PipeToOtherCommand();

    [GeneratedRegex(@"^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$")]
    private static partial Regex SubcommandLike();

    [GeneratedRegex(@"^(--?[A-Za-z][A-Za-z0-9-]*)(=.*)?$")]
    private static partial Regex Option();
}
