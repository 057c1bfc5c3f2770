using System.Diagnostics;
using System.Globalization;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// <c>clustersync node</c> at the edges of its start: a signal at any moment of start-up is a clean stop (exit 0), and a
/// damaged telemetry file is a configuration error (exit 2) naming the file and what to do, not a stack trace.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class StartupErrorProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-startup-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string extra = "")
    {
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{NodeProcess.FreeUdpPort()}}", "fullSyncPort": {{NodeProcess.FreeTcpPort()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{NodeProcess.FreeTcpPort()}} } },
              "dataPlane": { "source": "generator" }{{extra}}
            }
            """));
        return path;
    }

    /// <summary>The process runs managed code: the CLI assembly is mapped (before that, the runtime's own start-up).</summary>
    private static async Task WaitForCliLoadedAsync(NodeProcess node)
        => await Wait.UntilAsync(
            () => File.ReadAllText($"/proc/{node.Id}/maps").Contains("clustersync.dll", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30),
            () => "the CLI assembly was not loaded within 30 s",
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
        var config = Config();
        await using var node = NodeProcess.Start("node", "--config", config);
        await WaitForCliLoadedAsync(node);
        var since = Stopwatch.StartNew();
        while (since.ElapsedMilliseconds < afterMs && !node.HasExited)
        {
            await Task.Delay(1);
        }

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
        var db = Path.Combine(_dir, "telemetry.db");
        if (damage == "garbage")
        {
            var bytes = new byte[64 * 1024];
            new Random(5).NextBytes(bytes);
            File.WriteAllBytes(db, bytes);
        }
        else
        {
            // A real telemetry file from a first run, cut in the middle.
            var first = Config($$""", "telemetry": { "enabled": true, "path": "telemetry.db" }""");
            await using (var node = NodeProcess.Start("node", "--config", first))
            {
                // LiteDB writes to its log file first and into the file itself at checkpoints (the last one at the stop).
                var log = Path.Combine(_dir, "telemetry-log.db");
                await Wait.UntilAsync(
                    () => Math.Max(File.Exists(db) ? new FileInfo(db).Length : 0, File.Exists(log) ? new FileInfo(log).Length : 0) >= 64 * 1024,
                    TimeSpan.FromSeconds(30),
                    () => $"no telemetry file:\n{node.Output}");

                await node.TerminateAsync();
                Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(40)));
            }

            Assert.True(new FileInfo(db).Length > 64 * 1024, $"telemetry file of {new FileInfo(db).Length} bytes after the stop");
            using var file = new FileStream(db, FileMode.Open);
            file.SetLength(file.Length / 2 + 1234);
        }

        var config = Config($$""", "telemetry": { "enabled": true, "path": "telemetry.db" }""");
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(60), "node", "--config", config);

        Assert.True(code == 2, $"exit {code}:\n{output}");
        Assert.Contains($"telemetry.path: '{db}'", output, StringComparison.Ordinal);
        Assert.Contains("move it aside", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
