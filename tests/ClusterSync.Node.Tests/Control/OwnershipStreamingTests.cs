using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace ClusterSync.Node.Tests.Control;

/// <summary>
/// <c>GET /ownership?connections=true</c> on a 200,000-connection node: streamed with bounded memory. Alone in its
/// collection (never in parallel): it measures the process's allocations.
/// </summary>
[Collection(MeasuresAllocations.Name)]
public sealed class OwnershipStreamingTests(ITestOutputHelper output) : IDisposable
{
    private const int Connections = 200_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-ownership-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class TestLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public async Task OwnershipWithConnections_200kTable_StreamedWithAllocationsFarBelowTheAnswer()
    {
        int control = Ports.FreeTcp();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, $$"""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:{{Ports.FreeUdp()}}", "fullSyncPort": {{Ports.FreeTcp()}} } ] },
              "node": { "memberId": 1, "control": { "port": {{control}} } },
              "sync": { "tableCapacity": 524288 },
              "dataPlane": { "source": "generator",
                "generator": { "connections": {{2 * Connections}}, "changesPerSecond": 2000000, "maxChanges": {{Connections}}, "ipv6Share": 0 } }
            }
            """);
        await using var host = NodeHost.Build(NodeConfigLoader.Load(config), b =>
        {
            b.Logging.ClearProviders();
            b.Services.AddSingleton<IHostLifetime, TestLifetime>();
        });
        await host.Host.StartAsync();
        try
        {
            // The first half of the generator's population is all opens: maxChanges of them fill the table.
            await Wait.WaitUntilAsync(
                () => host.Runtime.Engine.LiveConnectionCount >= Connections,
                $"the table to hold {Connections} connections",
                TimeSpan.FromSeconds(60),
                () => $"it holds {host.Runtime.Engine.LiveConnectionCount}");

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            var url = $"http://127.0.0.1:{control}/ownership?connections=true";
            await ReadAsync(http, url); // warm-up (JIT, pools)

            long before = GC.GetTotalAllocatedBytes(precise: true);
            long body = await ReadAsync(http, url);
            long streamed = GC.GetTotalAllocatedBytes(precise: true) - before;

            before = GC.GetTotalAllocatedBytes(precise: true);
            long buffered = OwnershipReport.Serialize(OwnershipReport.Build(host.Runtime, withList: true)).LongLength;
            long bufferedAllocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            output.WriteLine($"answer {body:N0} bytes for {Connections:N0} connections; allocated while streaming {streamed:N0} bytes; building it in memory (the old way) allocates {bufferedAllocated:N0} bytes");
            Assert.True(body > Connections * 100L, $"the answer lists every connection ({body:N0} bytes)");
            Assert.InRange(buffered, body - 1000, body + 1000); // the same document
            // Process-wide count: the running node's own timers and heartbeats allocate too, more so while a loaded
            // machine stretches the read; buffering the answer allocates at least the whole body, so half of it still
            // tells the two apart.
            Assert.True(streamed < body / 2, $"streaming allocated {streamed:N0} bytes for a {body:N0}-byte answer (buffering: {bufferedAllocated:N0})");
        }
        finally
        {
            await host.Host.StopAsync();
        }
    }

    /// <summary>Reads the answer through one small buffer and returns its length.</summary>
    private static async Task<long> ReadAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasuresAllocations
{
    public const string Name = "measures process-wide allocations";
}
