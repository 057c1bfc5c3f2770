namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// <c>clustersync node</c> at the edges of its start: a signal at any moment of start-up is a clean stop (exit 0), and a
/// damaged telemetry file is a configuration error (exit 2) naming the file and what to do, not a stack trace.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class StartupErrorProcessTests(ITestOutputHelper log) : IAsyncLifetime
{
    private static readonly TelemetryOptions s_telemetry = new() { Enabled = true, Path = "telemetry.db" };
    private readonly NodeCluster _node = new(1, log);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _node.DisposeAsync();

    private string Config(TelemetryOptions? telemetry = null)
        => _node.Write(1, NodeCluster.Generator(new GeneratorConfig()), adjust: c => c with { Telemetry = telemetry ?? c.Telemetry });

    /// <summary>The process runs managed code: the CLI assembly is mapped (before that, the runtime's own start-up).</summary>
    private static async Task WaitForCliLoadedAsync(CliProcess node)
        => await Wait.WaitUntilAsync(
            () => File.ReadAllText($"/proc/{node.Id}/maps").Contains("clustersync.dll", StringComparison.Ordinal),
            "the CLI assembly loaded",
            TimeSpan.FromSeconds(30),
            () => node.Tail(),
            () =>
            {
                if (node.HasExited)
                {
                    Assert.Fail($"the node exited ({node.ExitCode}) before it loaded:\n{node.Output}");
                }
            },
            poll: TimeSpan.FromMilliseconds(1)); // the SIGTERM theory counts its offsets from this moment: notice it promptly

    [Theory]
    [InlineData(30)]
    [InlineData(60)]
    [InlineData(100)]
    [InlineData(150)]
    [InlineData(200)]
    [InlineData(300)]
    [InlineData(400)]
    [InlineData(600)]
    [InlineData(1000)]
    public async Task Node_SigtermDuringStartup_ExitZeroWithoutStackTrace(int afterMs)
    {
        Config();
        var node = _node.Start(1);
        await WaitForCliLoadedAsync(node);
        var since = Stopwatch.StartNew();
        await Wait.UntilAsync(() => Task.FromResult(node.HasExited), TimeSpan.FromMilliseconds(afterMs), poll: TimeSpan.FromMilliseconds(1)); // the signal's moment

        await node.TerminateAsync();
        int code = await node.WaitForExitAsync(TimeSpan.FromSeconds(40));

        Assert.True(code == 0, $"SIGTERM {afterMs} ms after the CLI loaded: exit {code}\n{node.Output}");
        Assert.DoesNotContain("   at ", node.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("truncated")]
    public async Task Node_DamagedTelemetryFile_Exit2NamingFileAndHint(string damage)
    {
        var db = Path.Combine(_node.Directory, "telemetry.db");
        if (damage == "garbage")
        {
            var bytes = new byte[64 * 1024];
            new Random(5).NextBytes(bytes);
            File.WriteAllBytes(db, bytes);
        }
        else
        {
            // A real telemetry file from a first run, cut in the middle.
            Config(s_telemetry);
            var node = _node.Start(1);
            // LiteDB writes to its log file first and into the file itself at checkpoints (the last one at the stop).
            var liteLog = Path.Combine(_node.Directory, "telemetry-log.db");
            await _node.WaitUntilAsync(
                () => Math.Max(File.Exists(db) ? new FileInfo(db).Length : 0, File.Exists(liteLog) ? new FileInfo(liteLog).Length : 0) >= 64 * 1024,
                "a telemetry file of 64 KiB");

            await node.TerminateAsync();
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(40)));

            Assert.True(new FileInfo(db).Length > 64 * 1024, $"telemetry file of {new FileInfo(db).Length} bytes after the stop");
            using var file = new FileStream(db, FileMode.Open);
            file.SetLength(file.Length / 2 + 1234);
        }

        var config = Config(s_telemetry);
        var run = await _node.RunAsync(TimeSpan.FromSeconds(60), "node", "--config", config);

        run.AssertExit2($"telemetry.path: '{db}'", "move it aside");
    }
}
