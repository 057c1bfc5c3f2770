namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// The control endpoint of a real node process under clients that connect while the node starts (the managed
/// HttpListener used to throw from its own Start() in that case and the node exited 1).
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class ControlEndpointProcessTests(ITestOutputHelper log)
{
    /// <summary>One raw GET; the status line, or null when the port refused, reset or timed out.</summary>
    private static async Task<string?> GetAsync(int port, string path, CancellationToken token)
    {
        try
        {
            using var client = new TcpClient();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(token);
            cts.CancelAfter(TimeSpan.FromSeconds(2));
            await client.ConnectAsync(IPAddress.Loopback, port, cts.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"), cts.Token);
            using var reader = new StreamReader(stream, Encoding.ASCII);
            var all = await reader.ReadToEndAsync(cts.Token);
            int end = all.IndexOf('\r', StringComparison.Ordinal);
            return end < 0 ? null : all[..end];
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    [Fact]
    public async Task StartUp_ClientsHammerTheControlPort_NodeStaysUpAnswersAndStopsCleanly()
    {
        for (int round = 0; round < 3; round++)
        {
            await using var cluster = new NodeCluster(1, log);
            int control = cluster.Control[0];
            cluster.Write(1, NodeCluster.NoDataPlane, new SyncConfig { TableCapacity = 1024 });

            // Four pollers start before the node and keep connecting as fast as they can (bounded in time and count).
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            long ok = 0, attempts = 0;
            var pollers = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && Interlocked.Increment(ref attempts) < 2_000_000)
                {
                    var status = await GetAsync(control, i % 2 == 0 ? "/healthz" : "/status", stop.Token);
                    if (status == "HTTP/1.1 200 OK")
                    {
                        Interlocked.Increment(ref ok);
                    }
                }
            })).ToList();

            var node = cluster.Start(1);
            await Wait.UntilAsync(() => Task.FromResult(Interlocked.Read(ref ok) >= 200 || node.HasExited), TimeSpan.FromSeconds(45));

            await stop.CancelAsync();
            await Task.WhenAll(pollers);
            Assert.False(node.HasExited, $"round {round}: the node exited under early clients:\n{node.Output}");
            Assert.True(Interlocked.Read(ref ok) >= 200, $"round {round}: only {ok} answers in {attempts} attempts:\n{node.Output}");

            await node.TerminateAsync();
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("sent heartbeats with state Down", node.Output, StringComparison.Ordinal);
        }
    }
}
