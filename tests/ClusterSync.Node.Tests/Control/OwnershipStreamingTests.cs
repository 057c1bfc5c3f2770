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

            // The streaming writer itself, on this thread alone: into a sink that completes every write at once, the whole
            // walk runs synchronously here, so this thread's allocation count is exactly the writer's, whatever else the
            // process (the node's timers, other threads of a loaded machine) allocates meanwhile.
            var sink = new CountingStream();
            await OwnershipReport.WriteAsync(host.Runtime, sink, CancellationToken.None); // warm-up
            sink = new CountingStream();
            long threadBefore = GC.GetAllocatedBytesForCurrentThread();
            var write = OwnershipReport.WriteAsync(host.Runtime, sink, CancellationToken.None);
            long writer = GC.GetAllocatedBytesForCurrentThread() - threadBefore;
            Assert.True(write.IsCompletedSuccessfully, "the walk into a synchronous sink completed on this thread (else the count above is not the writer's)");

            // The whole answer through the control endpoint (the server's side and this client's), counted process-wide.
            long before = GC.GetTotalAllocatedBytes(precise: true);
            long body = await ReadAsync(http, url);
            long streamed = GC.GetTotalAllocatedBytes(precise: true) - before;

            before = GC.GetTotalAllocatedBytes(precise: true);
            long buffered = OwnershipReport.Serialize(OwnershipReport.Build(host.Runtime, withList: true)).LongLength;
            long bufferedAllocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            output.WriteLine($"answer {body:N0} bytes for {Connections:N0} connections; the writer allocated {writer:N0} bytes; the process allocated {streamed:N0} bytes while it was read over HTTP; building it in memory (the old way) allocates {bufferedAllocated:N0} bytes");
            Assert.True(body > Connections * 100L, $"the answer lists every connection ({body:N0} bytes)");
            Assert.InRange(buffered, body - 1000, body + 1000); // the same document
            Assert.InRange(sink.Length, body - 1000, body + 1000); // the writer wrote that document
            // The writer holds one step's output whatever the table size: a small fraction of the answer. Exact (one
            // thread's count), so the bound can be tight.
            Assert.True(writer < body / 16, $"the streaming writer allocated {writer:N0} bytes for a {body:N0}-byte answer (buffering: {bufferedAllocated:N0})");
            // Over HTTP the count is process-wide: the running node's timers and heartbeats allocate too, for as long as a
            // loaded machine stretches the read (6 MB on a quiet machine, 20 MB seen at load 35). A server that buffered
            // the answer would allocate at least all of it on top.
            Assert.True(streamed < body, $"reading the answer over HTTP allocated {streamed:N0} bytes in the process for a {body:N0}-byte answer (buffering: {bufferedAllocated:N0})");
        }
        finally
        {
            await host.Host.StopAsync();
        }
    }

    /// <summary>A write-only stream that counts what it is given and completes every write at once.</summary>
    private sealed class CountingStream : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Position;

        public override long Position { get; set; }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Position += count;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Position += buffer.Length;
            return ValueTask.CompletedTask;
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
