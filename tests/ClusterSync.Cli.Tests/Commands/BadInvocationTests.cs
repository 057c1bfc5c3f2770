namespace ClusterSync.Cli.Tests.Commands;

/// <summary>
/// A sweep over the commands: a bad path or value is exit 2 with one line on stderr that names the option as the user
/// typed it (and the path), no stack trace, no .NET type name, nothing on stdout (a value the parser cannot read also
/// gets the usage hint, as every parser error). Placeholders: DIR (a temporary
/// directory), MISSING (a file that does not exist in it), NODIR (a directory that does not exist), FILE (an existing file).
/// </summary>
public sealed class BadInvocationTests : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-cli-bad-").FullName;

    public BadInvocationTests() => File.WriteAllText(Path.Combine(_dir, "file"), "x\n");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string> Invocations => new()
    {
        { "generate --out NODIR/trace.csv", "--out: the directory of 'NODIR/trace.csv' does not exist" },
        { "generate --out DIR", "--out: 'DIR' is a directory" },
        { "generate --out DIR/t.csv --start yesterday", "--start: expected a UTC date or time" },
        { "generate --out DIR/t.csv --days 0", "--days: expected days in (0, 366], found 0" },
        { "status --timeout soon", "for option '--timeout': expected a number." },
        { "soak --seeds many", "for option '--seeds': expected a whole number." },
        { "keygen --out NODIR/cluster.key", "--out: the directory of 'NODIR/cluster.key' does not exist" },
        { "node --config MISSING", "MISSING: cannot read the configuration file" },
        { "node --config DIR", "DIR: cannot read the configuration file" },
        { "replay --trace MISSING --config FILE", "--trace: no such file 'MISSING'" },
        { "replay --trace FILE --config FILE --speed 0", "--speed: expected a factor" },
        { "status --endpoint ftp://127.0.0.1:1", "--endpoint" },
        { "status --token-file MISSING", "--token-file" },
        { "status --endpoint https://127.0.0.1:1 --ca-file MISSING", "--ca-file: no such file 'MISSING'" },
        { "status --endpoint https://127.0.0.1:1 --ca-file FILE", "--ca-file: FILE: expected PEM certificates, found none" },
        { "admin down --timeout 0", "--timeout: expected seconds in (0, 300], found 0" },
        { "admin up --endpoint https://127.0.0.1:1 --ca-file FILE", "--ca-file: FILE: expected PEM certificates, found none" },
        { "telemetry export --endpoint not-a-url --out DIR/x.csv", "--endpoint: expected an http or https URL" },
        { "plugins --dir MISSING", "--dir: no such directory 'MISSING'" },
        { "plugins --config MISSING", "MISSING: cannot read the configuration file" },
        { "telemetry export --db MISSING --out DIR/x.csv", "--db: no such telemetry file" },
        { "telemetry export --db FILE --out DIR/x.csv --format json", "--format: expected 'lifecycle' or 'trace'" },
        { "simulate --trace MISSING --model MISSING", "--model" },
        { "simulate --trace MISSING --plot NODIR/frontier.png", "--plot: the directory of 'NODIR/frontier.png' does not exist" },
        { "simulate --trace MISSING --budget 2", "--budget: expected a share in (0, 1), found 2" },
        { "train --trace MISSING", "--trace: no such file or directory 'MISSING'" },
        { "train --trace FILE --out-dir FILE", "--out-dir: expected a directory to write the model into" },
        { "train --trace FILE --trees 0", "--trees: expected 1-5000, found 0" },
        { "train --trace FILE --name a/b", "--name: expected a file name without directories" },
        { "soak --seeds 0", "--seeds: expected a number of seeds of at least 1, found 0" },
        { "bench telemetry --db NODIR/t.db --seconds 1 --rounds 1", "--db: the directory of 'NODIR/t.db' does not exist" },
        { "bench prediction --model MISSING", "MISSING" },
        { "bench delta --scheduler deadline:3", "--scheduler: expected fifo:PRIORITY, rr:PRIORITY (1-99), nice:N (-20 to 19) or other, found 'deadline:3'" },
        { "bench delta --scheduler fifo:0", "--scheduler: priority: expected 1 to 99 with policy 'fifo', found 0" },
        { "bench delta --scheduler nice:25", "--scheduler: nice: expected -20 to 19, found 25" },
        { "bench failover --scheduler deadline:3", "--scheduler: expected fifo:PRIORITY, rr:PRIORITY (1-99), nice:N (-20 to 19) or other, found 'deadline:3'" },
    };

    [Theory]
    [MemberData(nameof(Invocations))]
    public async Task Command_BadPathOrValue_Exit2WithOneLineNamingTheOption(string args, string expected)
    {
        string Fill(string s) => s
            .Replace("NODIR", Path.Combine(_dir, "nodir"), StringComparison.Ordinal)
            .Replace("MISSING", Path.Combine(_dir, "missing"), StringComparison.Ordinal)
            .Replace("FILE", Path.Combine(_dir, "file"), StringComparison.Ordinal)
            .Replace("DIR", _dir, StringComparison.Ordinal);

        await using var cli = await CliProcess.RunAsync(s_timeout, Fill(args).Split(' '));

        cli.AssertExit2(Fill(expected));
        // A value the parser refuses also gets the usage hint line (as every parser error does).
        var lines = cli.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l != "Run 'clustersync --help' for usage.").ToArray();
        Assert.True(lines.Length == 1, $"expected one line on stderr, found {lines.Length}:\n{cli.Stderr}");
        Assert.StartsWith("clustersync: ", lines[0], StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\b(System|Microsoft)\.[A-Z]\w+|Exception\b", lines[0]);
        Assert.Equal("", cli.Stdout);
    }
}
