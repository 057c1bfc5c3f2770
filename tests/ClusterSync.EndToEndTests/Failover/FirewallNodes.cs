using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ClusterSync.EndToEndTests.Netns;

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
    private readonly NsProcess?[] _nodes = new NsProcess?[3];
    private readonly HttpClient?[] _http = new HttpClient?[3];

    public FirewallNodes(FirewallPair net)
    {
        _net = net;
        // The test process id in the name: FirewallPair removes the directories of test processes that no longer run.
        Directory = System.IO.Directory.CreateTempSubdirectory($"cse2e-{Environment.ProcessId}-nodes-").FullName;
    }

    public string Directory { get; }

    public NsProcess? this[int fw] => _nodes[fw];

    /// <summary>The CLI as built by its own project (same configuration as the tests).</summary>
    public static string CliDll()
    {
        var configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar))) ?? "Release";
        var dll = Path.Combine(Workload.TrafficWorkload.RepositoryRoot(), "src", "ClusterSync.Cli", "bin", configuration, "net10.0", "clustersync.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build src/ClusterSync.Cli first", dll);
    }

    public async Task KeygenAsync()
    {
        var (code, output) = await Host.RunAsync("dotnet", [CliDll(), "keygen", "--out", Path.Combine(Directory, "cluster.key")], timeout: TimeSpan.FromSeconds(60));
        Assert.True(code == 0, $"clustersync keygen: {output}");
    }

    public string WriteConfig(int fw)
    {
        var path = Path.Combine(Directory, $"fw{fw}.json");
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture, $$"""
            {
              "cluster": {
                "keyFile": "cluster.key",
                "mode": "high-availability",
                "members": [
                  { "id": 1, "address": "{{FirewallPair.SyncAddress(1)}}:8116", "priority": 100, "fullSyncPort": 256 },
                  { "id": 2, "address": "{{FirewallPair.SyncAddress(2)}}:8116", "priority": 90, "fullSyncPort": 256 }
                ]
              },
              "node": { "memberId": {{fw}}, "control": { "port": {{ControlPort}} } },
              "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
              "dataPlane": { "source": "plugin", "plugin": "conntrack", "settings": { "ignore": ["10.201.3.0/30"] } }
            }
            """));
        return path;
    }

    /// <summary>Starts the node of firewall <paramref name="fw"/> in its namespace.</summary>
    public NsProcess Start(int fw)
    {
        var config = WriteConfig(fw);
        var n = _net.Start($"node fw{fw}", _net.Firewall(fw), "dotnet", [CliDll(), "node", "--config", config]);
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
        if (_nodes[fw] is not { } node || _http[fw] is not { } http || !node.Log.Contains("Control endpoint on", StringComparison.Ordinal))
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

    public static string? MemberState(JsonElement? status)
        => status is { } s ? s.GetProperty("membership").GetProperty("state").GetString() : null;

    /// <summary>Keys (<c>tcp A:p -&gt; B:q zone Z</c>) of every live connection in the node's table.</summary>
    public async Task<HashSet<string>?> TableKeysAsync(int fw)
    {
        if (await GetJsonAsync(fw, "/ownership?connections=true") is not { } doc)
        {
            return null;
        }

        return doc.GetProperty("list").EnumerateArray().Select(c => c.GetProperty("key").GetString()!).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails at <paramref name="timeout"/> or when a started node exits.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout)
    {
        var watched = _nodes.Where(n => n is { HasExited: false }).Select(n => n!).ToList();
        bool held = await Eventually.UntilAsync(condition, timeout, () =>
        {
            foreach (var n in watched)
            {
                Assert.False(n.HasExited, $"{n.Name} exited while waiting for {what}:\n{n.Log}");
            }
        });
        if (held)
        {
            return;
        }

        Assert.Fail($"timed out after {timeout.TotalSeconds:F0} s waiting for {what}:\n{string.Join("\n----\n", watched.Select(n => $"{n.Name}:\n{n.Log}"))}");
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
