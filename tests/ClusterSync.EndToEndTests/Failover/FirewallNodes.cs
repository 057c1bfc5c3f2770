namespace ClusterSync.EndToEndTests.Failover;

/// <summary>
/// One <c>clustersync node --config FILE</c> process per firewall namespace (<c>ip netns exec fwN dotnet
/// clustersync.dll node ...</c>): two members, high availability, fw1 priority 100 and fw2 90, delta and full sync over
/// the dedicated sync link (10.201.3.1/10.201.3.2, ports 8116 and 256), encrypted with a key from
/// <c>clustersync keygen</c>, every connection in the one class <c>full</c>, and the kernel data plane
/// (<c>dataPlane.source: plugin</c>, <c>dataPlane.plugin: conntrack</c>). Each node's control endpoint listens on
/// 127.0.0.1:9116 of its own namespace; the test reaches it with an HttpClient whose sockets are created inside
/// that namespace (<see cref="Host.TcpSocketIn"/>), no helper process and no curl.
/// </summary>
internal sealed class FirewallNodes : IAsyncDisposable
{
    public const int ControlPort = 9116;

    private readonly FirewallPair _net;
    private readonly CliProcess?[] _nodes = new CliProcess?[3];
    private readonly HttpClient?[] _http = new HttpClient?[3];

    public FirewallNodes(FirewallPair net)
    {
        _net = net;
        // The test process id in the name: FirewallPair removes the directories of test processes that no longer run.
        Directory = System.IO.Directory.CreateTempSubdirectory($"cse2e-{Environment.ProcessId}-nodes-").FullName;
    }

    public string Directory { get; }

    /// <summary>Changes each firewall's configuration before it is written (hooks, virtual addresses, a control token).</summary>
    public Func<int, NodeConfig, NodeConfig>? Adjust { get; init; }

    public CliProcess? this[int fw] => _nodes[fw];

    public async Task KeygenAsync()
    {
        await using var keygen = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), "keygen", "--out", Path.Combine(Directory, "cluster.key"));
        Assert.True(keygen.ExitCode == 0, keygen.Tail());
    }

    /// <summary>Firewall <paramref name="fw"/>'s node configuration, from the node's own records (<see cref="NodeConfigWriter"/>).</summary>
    public string WriteConfig(int fw) => NodeConfigWriter.Write(Path.Combine(Directory, $"fw{fw}.json"), (Adjust ?? ((_, c) => c))(fw, new NodeConfig
    {
        Cluster = new ClusterConfig
        {
            KeyFile = "cluster.key",
            Mode = ClusterConfig.ModeHighAvailability,
            Members = [.. new[] { 1, 2 }.Select(m => new MemberConfig { Id = m, Address = $"{FirewallPair.SyncAddress(m)}:8116", Priority = 110 - (10 * m), FullSyncPort = 256 })],
        },
        Node = new NodeSection { MemberId = fw, Control = new ControlConfig { Port = ControlPort } },
        Policy = NodeCluster.AllFull,
        DataPlane = NodeCluster.PluginDataPlane("conntrack", new { ignore = new[] { "10.201.3.0/30" } }),
    }));

    /// <summary>Starts the node of firewall <paramref name="fw"/> in its namespace.</summary>
    public CliProcess Start(int fw)
    {
        var config = WriteConfig(fw);
        var n = CliProcess.Start($"node fw{fw}", ["ip", "netns", "exec", _net.Firewall(fw)], "node", "--config", config);
        _nodes[fw] = n;
        _http[fw]?.Dispose();
        string ns = _net.Firewall(fw);
        _http[fw] = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = Host.TcpSocketIn(ns);
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
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
            BaseAddress = new Uri($"http://127.0.0.1:{ControlPort}"),
        };
        return n;
    }

    /// <summary>GET a JSON document from firewall <paramref name="fw"/>'s node; null while it does not answer (yet).</summary>
    public async Task<JsonElement?> GetJsonAsync(int fw, string path)
    {
        if (_nodes[fw] is not { } node || _http[fw] is not { } http || !node.HasLogged("Control endpoint on"))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(path));
            return doc.RootElement.Clone();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or IOException)
        {
            return null;
        }
    }

    public Task<JsonElement?> StatusAsync(int fw) => GetJsonAsync(fw, "/status");

    public static string? MemberState(JsonElement? status) => NodeCluster.MemberState(status);

    /// <summary>Keys (<c>tcp A:p -&gt; B:q zone Z</c>) of every live connection in the node's table.</summary>
    public async Task<HashSet<string>?> TableKeysAsync(int fw)
    {
        if (await GetJsonAsync(fw, "/ownership?connections=true") is not { } doc)
        {
            return null;
        }

        return doc.GetProperty("list").EnumerateArray().Select(c => c.GetProperty("key").GetString()!).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Every node's log (name, state, output tail).</summary>
    public string Logs() => string.Join("\n", _nodes.Where(n => n is not null).Select(n => n!.Tail()));

    /// <summary>Polls until <paramref name="condition"/> holds; fails at <paramref name="timeout"/> or when a started node exits, with every node's log.</summary>
    public Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout)
    {
        var watched = _nodes.Where(n => n is { HasExited: false }).Select(n => n!).ToList();
        return Wait.WaitUntilAsync(condition, what, timeout, Logs, () =>
        {
            foreach (var n in watched)
            {
                Assert.False(n.HasExited && !n.Stopped, $"{n.Name} exited while waiting for {what}:\n{Logs()}");
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes)
        {
            if (n is not null)
            {
                await n.DisposeAsync();
            }
        }

        foreach (var h in _http)
        {
            h?.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
