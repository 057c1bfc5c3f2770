using ClusterSync.Policy;
using Xunit.Abstractions;

namespace ClusterSync.EndToEndTests.Failover;

/// <summary>
/// Issue 11, the kernel part of connection templates: two real Linux firewalls (<see cref="FirewallPair"/>, whose
/// forward policy creates state only from a TCP SYN and runs with <c>nf_conntrack_tcp_loose=0</c>), a node per
/// firewall with the conntrack data plane and its template pickup (<c>templates.chain</c> = the forward policy's
/// chain). Connections to ports 7001 and 7002 are in a class that is never synchronized and makes templates (5
/// connections of one shape within 10 s). A burst of short connections to 7001 makes a template; one connection to
/// 7001 and one to 7002 stay open across the failover, never synchronized. After fw1 fails: the 7001 one (the
/// template's shape) keeps exchanging data through fw2 — also after the pickup window closed, so fw2's kernel created
/// state for it — and the 7002 one (no template) is dropped; when the window ends the rules and sets are gone and the
/// loose setting is back to 0.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class TemplateFailoverTests(ITestOutputHelper log)
{
    private const int TemplatePort = 7001;
    private const int OtherPort = 7002;
    private const int Burst = 10;
    private const int PickupWindowSeconds = 8;
    private const string ForwardChain = "inet cse2e forward";

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [NetnsFact]
    public async Task Failover_TemplatePickup_UnsyncedConnectionOfTemplateShapeSurvivesOtherDropped()
    {
        await using var net = await FirewallPair.CreateAsync(nat: false);
        Log($"namespaces {net.Prefix}-*");
        await using var nodes = new FirewallNodes(net)
        {
            Adjust = (_, c) => c with
            {
                Policy = new PolicyOptions
                {
                    Classes =
                    [
                        new ServiceClassOptions { Name = "default", Policy = "full" },
                        new ServiceClassOptions
                        {
                            Name = "short",
                            Policy = "none",
                            Templates = new TemplateOptions { Threshold = 5, WindowSeconds = 10, LifetimeSeconds = 120 },
                        },
                    ],
                    Rules = [new ClassRuleOptions { Protocol = "tcp", Ports = $"{TemplatePort},{OtherPort}", Class = "short" }],
                },
                DataPlane = NodeCluster.PluginDataPlane("conntrack", new
                {
                    ignore = new[] { "10.201.3.0/30" },
                    templates = new { chain = ForwardChain, pickupWindowSeconds = PickupWindowSeconds },
                }),
            },
        };
        await nodes.KeygenAsync();
        nodes.Start(1);
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(1)) == "Active", "fw1's node Active", TimeSpan.FromSeconds(60));
        nodes.Start(2);
        await nodes.WaitUntilAsync(async () => await nodes.StatusAsync(2) is { } s && FirewallNodes.MemberState(s) == "Standby"
            && s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "fw2's node Standby after its full sync", TimeSpan.FromSeconds(60));
        Log("fw1 Active, fw2 Standby");

        using var servers = new EchoServers(net.Server, TemplatePort, OtherPort);
        using var covered = await EchoClient.ConnectAsync(net.Client, TemplatePort);
        using var uncovered = await EchoClient.ConnectAsync(net.Client, OtherPort);
        Assert.True(await covered.RoundTripAsync(TimeSpan.FromSeconds(5)), "the 7001 connection does not work through fw1");
        Assert.True(await uncovered.RoundTripAsync(TimeSpan.FromSeconds(5)), "the 7002 connection does not work through fw1");
        for (int i = 0; i < Burst; i++)
        {
            using var shortLived = await EchoClient.ConnectAsync(net.Client, TemplatePort);
            Assert.True(await shortLived.RoundTripAsync(TimeSpan.FromSeconds(5)), $"short connection {i} failed through fw1");
        }

        await nodes.WaitUntilAsync(async () => await nodes.StatusAsync(2) is { } s && s.GetProperty("templates").GetProperty("live").GetInt32() >= 1,
            "fw2's node holding fw1's template", TimeSpan.FromSeconds(20));
        Log($"{Burst} short connections to {TemplatePort} through fw1; fw2 holds the template");

        // Neither open connection was ever synchronized: fw2's node and kernel know neither.
        var replica = await nodes.TableKeysAsync(2) ?? [];
        Assert.DoesNotContain(replica, k => k.Contains($":{covered.LocalPort} ", StringComparison.Ordinal) || k.Contains($":{uncovered.LocalPort} ", StringComparison.Ordinal));
        Assert.DoesNotContain(covered.LocalPort, await net.ConntrackClientPortsAsync(2, TemplatePort));
        Assert.DoesNotContain(uncovered.LocalPort, await net.ConntrackClientPortsAsync(2, OtherPort));

        nodes[1]!.Kill();
        await net.CutOffAsync(1);
        await net.RouteThroughAsync(2);
        long switched = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Log("fw1's node SIGKILLed, fw1 cut off; client and server route through fw2");
        await nodes.WaitUntilAsync(async () => await SinkCounterAsync(nodes, "template_window_active") == 1, "fw2's template pickup window open", TimeSpan.FromSeconds(15));
        long opened = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Log($"fw2 Active, its pickup window open ({opened - switched} ms after the switch)");
        Assert.Contains(TemplatePickup, await Host.InAsync(net.Firewall(2), "nft", "list", "table", "inet", "cse2e"));

        Assert.True(await covered.RoundTripAsync(TimeSpan.FromSeconds(10)),
            $"the unsynchronized {TemplatePort} connection (the template's shape) made no round trip through fw2\n{nodes.Logs()}");
        Log($"the unsynchronized {TemplatePort} connection exchanged data through fw2");
        Assert.Contains(covered.LocalPort, await net.ConntrackClientPortsAsync(2, TemplatePort));
        Assert.False(await uncovered.RoundTripAsync(TimeSpan.FromSeconds(5)),
            $"the unsynchronized {OtherPort} connection (no template) got through fw2");
        Assert.DoesNotContain(uncovered.LocalPort, await net.ConntrackClientPortsAsync(2, OtherPort));
        Log($"the unsynchronized {OtherPort} connection was dropped");

        // The window ends: rules and sets removed, the loose setting back to what the firewall had; the connection the
        // window picked up keeps flowing on the state the kernel created for it.
        await nodes.WaitUntilAsync(async () => await SinkCounterAsync(nodes, "template_window_active") == 0,
            "fw2's pickup window closed", TimeSpan.FromSeconds(PickupWindowSeconds + 15));
        Log($"pickup window closed ({DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - opened} ms after it opened)");
        Assert.DoesNotContain(TemplatePickup, await Host.InAsync(net.Firewall(2), "nft", "list", "table", "inet", "cse2e"));
        Assert.Equal("0", (await Host.InAsync(net.Firewall(2), "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose")).Trim());
        Assert.True(await SinkCounterAsync(nodes, "template_pickup_packets") >= 1, "the pickup rules accepted no packet");
        Assert.True(await covered.RoundTripAsync(TimeSpan.FromSeconds(5)), $"the picked-up {TemplatePort} connection stopped once the window closed");
    }

    private const string TemplatePickup = "clustersync_templates";

    private static async Task<long> SinkCounterAsync(FirewallNodes nodes, string name)
        => await nodes.StatusAsync(2) is { } s && s.GetProperty("dataPlane").TryGetProperty("plugin", out var p) && p.ValueKind == JsonValueKind.Object
            && p.TryGetProperty("sinkCounters", out var c) && c.ValueKind == JsonValueKind.Object && c.TryGetProperty(name, out var v)
            ? v.GetInt64()
            : -1;

    private void Log(string message) => log.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1} s  {message}");

    /// <summary>Echo servers on the server's address in its namespace (sockets created inside it); every accepted connection echoes until closed.</summary>
    private sealed class EchoServers : IDisposable
    {
        private readonly List<Socket> _listeners = [];
        private readonly CancellationTokenSource _stop = new();

        public EchoServers(string ns, params int[] ports)
        {
            foreach (int port in ports)
            {
                var l = Host.TcpSocketIn(ns);
                l.Bind(new IPEndPoint(IPAddress.Parse(FirewallPair.ServerAddress), port));
                l.Listen(64);
                _listeners.Add(l);
                _ = AcceptLoopAsync(l, _stop.Token);
            }
        }

        private static async Task AcceptLoopAsync(Socket listener, CancellationToken stop)
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var s = await listener.AcceptAsync(stop);
                    _ = EchoAsync(s, stop);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private static async Task EchoAsync(Socket s, CancellationToken stop)
        {
            using (s)
            {
                var buffer = new byte[64];
                try
                {
                    while (true)
                    {
                        int n = await s.ReceiveAsync(buffer, stop);
                        if (n == 0)
                        {
                            return;
                        }

                        await s.SendAsync(buffer.AsMemory(0, n), stop);
                    }
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            foreach (var l in _listeners)
            {
                l.Dispose();
            }

            _stop.Dispose();
        }
    }

    /// <summary>A client connection from the client's namespace to an echo server; a round trip sends one byte and waits for it back.</summary>
    private sealed class EchoClient : IDisposable
    {
        private readonly Socket _socket;
        private readonly byte[] _buffer = new byte[64];
        private Task<int>? _pendingReceive;
        private byte _next;

        private EchoClient(Socket socket) => _socket = socket;

        public int LocalPort => ((IPEndPoint)_socket.LocalEndPoint!).Port;

        public static async Task<EchoClient> ConnectAsync(string ns, int port)
        {
            var s = Host.TcpSocketIn(ns);
            try
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await s.ConnectAsync(new IPEndPoint(IPAddress.Parse(FirewallPair.ServerAddress), port), limit.Token);
                return new EchoClient(s);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        }

        /// <summary>Sends one byte and waits (bounded) for the echo; false when it did not come back in time. A late echo is read by the next round trip.</summary>
        public async Task<bool> RoundTripAsync(TimeSpan timeout)
        {
            byte b = ++_next;
            await _socket.SendAsync(new[] { b });
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < timeout)
            {
                _pendingReceive ??= _socket.ReceiveAsync(_buffer.AsMemory(), SocketFlags.None).AsTask();
                var done = await Task.WhenAny(_pendingReceive, Task.Delay(timeout - deadline.Elapsed));
                if (done != _pendingReceive)
                {
                    return false;
                }

                int n = await _pendingReceive;
                _pendingReceive = null;
                if (n <= 0)
                {
                    return false;
                }

                if (_buffer.AsSpan(0, n).Contains(b))
                {
                    return true;
                }
            }

            return false;
        }

        public void Dispose() => _socket.Dispose();
    }
}
