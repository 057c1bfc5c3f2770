using ClusterSync.Adaptive.Controller;
using ClusterSync.Telemetry;

namespace ClusterSync.EndToEndTests.Node;

/// <summary>
/// Adaptive mode on kernel-sourced connections (issue 15, item 4): a real <c>clustersync node</c> with
/// <c>dataPlane.plugin: conntrack</c>, <c>adaptive.enabled</c> on the shipped model and telemetry to a file, in a
/// namespace of its own; real TCP connections made by sockets in that namespace reach it as kernel conntrack events.
/// Its adaptive decision counters in <c>/status</c> must move for them and a telemetry record must be written for each
/// (read back after the node stopped with <c>clustersync telemetry export</c>), as for generated connections.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class AdaptiveKernelTests
{
    private const int Connections = 200;
    private const int ServerPort = 5801;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [NetnsFact]
    public async Task Node_AdaptiveOnKernelConnections_DecisionsCountedAndTelemetryWritten()
    {
        string ns = string.Create(CultureInfo.InvariantCulture, $"cse2e-{Environment.ProcessId}-adaptive");
        var directory = Directory.CreateTempSubdirectory($"cse2e-{Environment.ProcessId}-adaptive-");
        await Host.MustAsync("ip", "netns", "add", ns);
        CliProcess? node = null;
        HttpClient? http = null;
        try
        {
            await Host.InAsync(ns, "ip", "link", "set", "lo", "up");
            await Host.InAsync(ns, "sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1", "net.netfilter.nf_conntrack_acct=1");
            await Host.NftAsync(ns, "table inet t {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ct state established,related,new accept\n }\n}\n");
            var config = NodeConfigWriter.Write(Path.Combine(directory.FullName, "node.json"), new NodeConfig
            {
                Cluster = new ClusterConfig { Insecure = true, Members = [new MemberConfig { Id = 1, Address = "127.0.0.1:8116", FullSyncPort = 8117 }] },
                Node = new NodeSection { MemberId = 1, Control = new ControlConfig { Port = 9116 } },
                DataPlane = NodeCluster.PluginDataPlane("conntrack", new { ignoreLoopback = false }),
                Adaptive = new AdaptiveOptions { Enabled = true, FeedbackInterval = TimeSpan.FromMilliseconds(200) },
                Telemetry = new TelemetryOptions { Enabled = true, Path = "telemetry.db", MetricsInterval = TimeSpan.FromMilliseconds(200), FlushInterval = TimeSpan.FromMilliseconds(50) },
            });
            node = CliProcess.Start("node", ["ip", "netns", "exec", ns], "node", "--config", config);
            http = ClientIn(ns);

            var s = await StatusWhenAsync(http, node, st => st.GetProperty("dataPlane").TryGetProperty("plugin", out var p)
                && p.GetProperty("sourceState").GetString() == "running"
                && p.GetProperty("sourceCounters").GetProperty("dumps").GetInt64() >= 1);
            Assert.Equal("model", s.GetProperty("adaptive").GetProperty("mode").GetString());
            long before = Decisions(s);

            // Real connections through the namespace's kernel: connect, exchange a byte each way, close; then the
            // firewall forgets them (conntrack -D: their DESTROY events end their lifecycles now, not after TIME_WAIT).
            using (var listener = Host.TcpSocketIn(ns))
            {
                listener.Bind(new IPEndPoint(IPAddress.Loopback, ServerPort));
                listener.Listen(Connections);
                var buffer = new byte[1];
                for (int i = 0; i < Connections; i++)
                {
                    using var client = Host.TcpSocketIn(ns);
                    await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ServerPort));
                    using var server = await listener.AcceptAsync();
                    await client.SendAsync(new byte[] { 1 });
                    Assert.Equal(1, await server.ReceiveAsync(buffer));
                    await server.SendAsync(new byte[] { 2 });
                    Assert.Equal(1, await client.ReceiveAsync(buffer));
                }
            }

            s = await StatusWhenAsync(http, node, st => Decisions(st) - before >= Connections
                && st.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sourceCounters").GetProperty("announced_new").GetInt64() >= Connections);
            await Host.InAsync(ns, "conntrack", "-D", "-p", "tcp", "--orig-port-dst", ServerPort.ToString(CultureInfo.InvariantCulture));
            s = await StatusWhenAsync(http, node, st => st.GetProperty("telemetry").GetProperty("written").GetInt64() >= Connections
                && st.GetProperty("adaptive").GetProperty("outcomesObserved").GetInt64() >= Connections);
            var adaptive = s.GetProperty("adaptive");
            Assert.True(Decisions(s) - before >= Connections, adaptive.GetProperty("decisions").ToString());
            Assert.True(adaptive.GetProperty("outcomesObserved").GetInt64() >= Connections, adaptive.ToString());

            // Stop the node (SIGTERM: telemetry flushed and closed), then read its file back.
            await node.TerminateAsync();
            await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
            var csv = Path.Combine(directory.FullName, "lifecycles.csv");
            await using var export = await CliProcess.RunAsync(Timeout, "telemetry", "export", "--db", Path.Combine(directory.FullName, "telemetry.db"), "--out", csv);
            Assert.True(export.ExitCode == 0, export.Output);
            var lines = File.ReadAllLines(csv);
            var header = lines[0].Split(',');
            int dport = Array.IndexOf(header, "dport"), decision = Array.IndexOf(header, "decision"), cls = Array.IndexOf(header, "class"),
                start = Array.IndexOf(header, "start_ms"), end = Array.IndexOf(header, "end_ms"), protocol = Array.IndexOf(header, "protocol");
            var ours = lines.Skip(1).Select(l => l.Split(',')).Where(f => f[dport] == ServerPort.ToString(CultureInfo.InvariantCulture)).ToList();
            Assert.True(ours.Count >= Connections, $"{ours.Count} telemetry records for port {ServerPort} of {lines.Length - 1}:\n{string.Join('\n', lines.Take(5))}");
            Assert.All(ours, f =>
            {
                Assert.False(string.IsNullOrEmpty(f[decision]), string.Join(',', f));
                Assert.False(string.IsNullOrEmpty(f[cls]), string.Join(',', f));
                Assert.True(long.Parse(f[start], CultureInfo.InvariantCulture) > 0 && long.Parse(f[end], CultureInfo.InvariantCulture) >= long.Parse(f[start], CultureInfo.InvariantCulture), string.Join(',', f));
            });
        }
        catch
        {
            Console.WriteLine($"--- node output ---\n{node?.Output}");
            throw;
        }
        finally
        {
            http?.Dispose();
            if (node is not null)
            {
                await node.DisposeAsync();
            }

            await Host.RunAsync("ip", ["netns", "del", ns]);
            directory.Delete(recursive: true);
        }
    }

    private static long Decisions(JsonElement status)
        => status.GetProperty("adaptive").GetProperty("decisions").EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.Number).Sum(p => p.Value.GetInt64());

    private static HttpClient ClientIn(string ns) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = Host.TcpSocketIn(ns);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
        PooledConnectionLifetime = TimeSpan.Zero,
    })
    {
        Timeout = TimeSpan.FromSeconds(5),
        BaseAddress = new Uri("http://127.0.0.1:9116"),
    };

    private static async Task<JsonElement> StatusWhenAsync(HttpClient http, CliProcess node, Func<JsonElement, bool> done)
    {
        string last = "";
        JsonElement status = default;
        bool held = await Wait.UntilAsync(
            async () =>
            {
                Assert.False(node.HasExited, $"the node exited:\n{node.Output}");
                try
                {
                    last = await http.GetStringAsync("/status");
                    using var doc = JsonDocument.Parse(last);
                    if (done(doc.RootElement))
                    {
                        status = doc.RootElement.Clone();
                        return true;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
                {
                }

                return false;
            },
            Timeout,
            poll: TimeSpan.FromMilliseconds(100));
        if (held)
        {
            return status;
        }

        Assert.Fail($"timed out; last status: {last}\n{node.Output}");
        return default;
    }
}
