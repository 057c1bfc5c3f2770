using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A loopback cluster of <c>clustersync node</c> OS processes for the cluster-lifecycle tests: ports (never handed out
/// twice), configuration files (member i has priority 110 - 10 i, all-<c>full</c> policy), a key from
/// <c>clustersync keygen</c>, the processes, and polling of their control endpoints. Disposing kills what still runs
/// and deletes the directory.
/// </summary>
internal sealed class ProcessCluster : IAsyncDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly NodeProcess?[] _nodes;

    public ProcessCluster(int members, string mode = "high-availability")
    {
        Members = members;
        Mode = mode;
        Sync = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeUdpPort()).ToArray();
        FullSync = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeTcpPort()).ToArray();
        Control = Enumerable.Range(0, members).Select(_ => NodeProcess.FreeTcpPort()).ToArray();
        _nodes = new NodeProcess?[members + 1];
        Directory = System.IO.Directory.CreateTempSubdirectory("clustersync-cluster-").FullName;
        Token = ClusterSync.Node.Configuration.ControlTokenFile.Write(Path.Combine(Directory, "control.token"));
    }

    /// <summary>The control endpoints' bearer token (every member's <c>node.control.tokenFile</c> is <c>control.token</c>).</summary>
    public string Token { get; }

    public int Members { get; }

    public string Mode { get; }

    public string Directory { get; }

    /// <summary>UDP sync ports, index member - 1.</summary>
    public int[] Sync { get; }

    /// <summary>TCP full sync ports, index member - 1.</summary>
    public int[] FullSync { get; }

    public int[] Control { get; }

    public NodeProcess? this[int member] => _nodes[member];

    public IEnumerable<NodeProcess> Running => _nodes.Where(n => n is { HasExited: false }).Select(n => n!);

    public string Endpoint(int member) => $"http://127.0.0.1:{Control[member - 1]}";

    public async Task KeygenAsync()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(Directory, "cluster.key"));
        Assert.True(code == 0, output);
    }

    public string ConfigPath(int member) => Path.Combine(Directory, $"node{member}.json");

    /// <summary>Writes member <paramref name="member"/>'s configuration; <paramref name="cluster"/> adds settings to its <c>cluster</c> section (each followed by a comma).</summary>
    public string Write(int member, string dataPlane, string sync = """{"tableCapacity": 16384}""", string cluster = "")
    {
        var c = CultureInfo.InvariantCulture;
        var list = string.Join(",\n", Enumerable.Range(1, Members).Select(i =>
            string.Create(c, $$"""      { "id": {{i}}, "address": "127.0.0.1:{{Sync[i - 1]}}", "priority": {{110 - (10 * i)}}, "fullSyncPort": {{FullSync[i - 1]}} }""")));
        var path = ConfigPath(member);
        File.WriteAllText(path, string.Create(c, $$"""
            {
              "cluster": { "keyFile": "cluster.key", "mode": "{{Mode}}", {{cluster}}"members": [
            {{list}}
              ] },
              "node": { "memberId": {{member}}, "control": { "port": {{Control[member - 1]}}, "tokenFile": "control.token" } },
              "sync": {{sync}},
              "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
              "dataPlane": {{dataPlane}}
            }
            """));
        return path;
    }

    /// <summary>Starts member <paramref name="member"/> from its configuration file (again, after a kill: same file, same ports).</summary>
    public NodeProcess Start(int member)
    {
        var n = NodeProcess.Start("node", "--config", ConfigPath(member));
        _nodes[member] = n;
        return n;
    }

    public async Task<JsonElement?> StatusAsync(int member) => await GetJsonAsync(member, "/status").ConfigureAwait(false);

    /// <summary>GET a JSON document from the member's control endpoint; null while it does not answer (yet).</summary>
    public async Task<JsonElement?> GetJsonAsync(int member, string path)
    {
        string endpoint = Endpoint(member);
        if (!NodeProcess.ControlReady(endpoint))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(await _http.GetStringAsync($"{endpoint}{path}").ConfigureAwait(false));
            return doc.RootElement.Clone();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    public async Task PostAsync(int member, string pathAndQuery)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Endpoint(member)}{pathAndQuery}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token);
        using var response = await _http.SendAsync(request).ConfigureAwait(false);
        Assert.True(response.IsSuccessStatusCode, $"POST {pathAndQuery} to member {member}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
    }

    public static (long Count, string Xor) Digest(JsonElement statusOrDigest)
    {
        var d = statusOrDigest.TryGetProperty("digest", out var inner) ? inner : statusOrDigest;
        return (d.GetProperty("count").GetInt64(), d.GetProperty("xor").GetString()!);
    }

    public static string? MemberState(JsonElement? status)
        => status is { } s ? s.GetProperty("membership").GetProperty("state").GetString() : null;

    /// <summary>
    /// The member's own changes are all out and acknowledged: nothing pending, and every live peer acknowledged its
    /// last data sequence (with the generator held, nothing new can start meanwhile).
    /// </summary>
    public static bool Settled(JsonElement s)
    {
        ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
        return s.GetProperty("pending").GetInt32() == 0
            && s.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("alive").GetBoolean()).All(p => p.GetProperty("ackedThrough").GetUInt64() == sent);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails at <paramref name="timeout"/> or when a running node exits.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var watched = Running.ToList();
        await Wait.UntilAsync(
            condition,
            limit,
            () => $"timed out after {limit.TotalSeconds:F0} s waiting for {what}:\n{string.Join("\n----\n", watched.Select(n => Tail(n.Output)))}",
            () =>
            {
                foreach (var n in watched)
                {
                    if (n.HasExited)
                    {
                        Assert.Fail($"a node exited ({n.ExitCode}) while waiting for {what}:\n{n.Output}");
                    }
                }
            }).ConfigureAwait(false);
    }

    private static string Tail(string output) => output.Length <= 8000 ? output : "..." + output[^8000..];

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes)
        {
            if (n is not null)
            {
                await n.DisposeAsync().ConfigureAwait(false);
            }
        }

        _http.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
