using System.Net.Http.Headers;
using System.Text.Json;
using ClusterSync.Node.Configuration;
using ClusterSync.Policy;
using Xunit.Abstractions;

namespace ClusterSync.TestUtilities;

/// <summary>
/// A loopback cluster of <c>clustersync node</c> OS processes: ports (never handed out twice), a temporary directory,
/// configuration files written from the node's own <see cref="NodeConfig"/> records (<see cref="NodeConfigWriter"/>:
/// member i has priority 110 - 10 i, an all-<c>full</c> policy, a control token file), optionally a key from
/// <c>clustersync keygen</c>, the processes, polling of their control endpoints with one
/// <see cref="WaitUntilAsync"/>, and their logs: attached to every failed wait and written to the test's output when
/// the cluster is disposed. Disposing kills what still runs and deletes the directory, also when the test failed.
/// </summary>
public sealed class NodeCluster : IAsyncDisposable
{
    /// <summary>The default bound on a wait.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly CliProcess?[] _nodes;
    private readonly List<CliProcess> _started = [];
    private readonly ITestOutputHelper? _output;

    /// <param name="members">How many members the configurations list (the processes are started one by one).</param>
    /// <param name="output">The test's output: every process's log is written there when the cluster is disposed.</param>
    /// <param name="mode"><c>cluster.mode</c>.</param>
    public NodeCluster(int members, ITestOutputHelper? output = null, string mode = ClusterConfig.ModeHighAvailability)
    {
        Members = members;
        Mode = mode;
        _output = output;
        Sync = Enumerable.Range(0, members).Select(_ => Ports.FreeUdp()).ToArray();
        FullSync = Enumerable.Range(0, members).Select(_ => Ports.FreeTcp()).ToArray();
        Control = Enumerable.Range(0, members).Select(_ => Ports.FreeTcp()).ToArray();
        _nodes = new CliProcess?[members + 1];
        Directory = System.IO.Directory.CreateTempSubdirectory("clustersync-cluster-").FullName;
        Token = ControlTokenFile.Write(Path.Combine(Directory, TokenFileName));
    }

    public const string KeyFileName = "cluster.key";
    public const string TokenFileName = "control.token";

    /// <summary>The policy of every configuration unless changed: every connection in the one class <c>default</c>, synchronized at once.</summary>
    public static readonly PolicyOptions AllFull = new() { Classes = [new ServiceClassOptions { Name = "default", Policy = "full" }], Rules = [] };

    /// <summary>A pure standby replica (<c>dataPlane.source: none</c>).</summary>
    public static readonly DataPlaneConfig NoDataPlane = new() { Source = DataPlaneConfig.SourceNone };

    /// <summary>The built-in generator with these settings (<c>dataPlane.source: generator</c>).</summary>
    public static DataPlaneConfig Generator(GeneratorConfig generator) => new() { Source = DataPlaneConfig.SourceGenerator, Generator = generator };

    /// <summary>A data-plane plugin by name (<c>dataPlane.source: plugin</c>) with <paramref name="settings"/> (serialized as given, e.g. <c>new { failAfter = 300 }</c>).</summary>
    public static DataPlaneConfig PluginDataPlane(string? name, object? settings = null) => new()
    {
        Source = DataPlaneConfig.SourcePlugin,
        Plugin = name,
        Settings = settings is null ? null : JsonSerializer.SerializeToElement(settings),
    };

    /// <summary>A data-plane section as a configuration file would say it (theory data), read with the node's own options into its record.</summary>
    public static DataPlaneConfig DataPlane(string json) => JsonSerializer.Deserialize<DataPlaneConfig>(json, NodeConfigLoader.JsonOptions)!;

    /// <summary>The control endpoints' bearer token (every member's <c>node.control.tokenFile</c> is <see cref="TokenFileName"/>).</summary>
    public string Token { get; }

    public int Members { get; }

    public string Mode { get; }

    /// <summary>A plugin transport: its name and each member's address on it (member id → address); null for UDP.</summary>
    public (string Name, Func<int, string> Address)? Transport { get; init; }

    public string Directory { get; }

    /// <summary>UDP sync ports, index member - 1.</summary>
    public int[] Sync { get; }

    /// <summary>TCP full sync ports, index member - 1.</summary>
    public int[] FullSync { get; }

    public int[] Control { get; }

    /// <summary>True after <see cref="KeygenAsync"/>: the configurations name the key file; else they are <c>insecure</c>.</summary>
    public bool Encrypted { get; private set; }

    public CliProcess? this[int member] => _nodes[member];

    public string Endpoint(int member) => $"http://127.0.0.1:{Control[member - 1]}";

    public string ConfigPath(int member) => Path.Combine(Directory, $"node{member}.json");

    /// <summary>Makes the cluster key with <c>clustersync keygen</c> (as an operator would); later configurations are encrypted.</summary>
    public async Task KeygenAsync()
    {
        await using var keygen = await RunAsync(TimeSpan.FromSeconds(60), "keygen", "--out", Path.Combine(Directory, KeyFileName)).ConfigureAwait(false);
        Assert.True(keygen.ExitCode == 0, keygen.Tail());
        Encrypted = true;
    }

    /// <summary>
    /// Member <paramref name="member"/>'s configuration: every member of this cluster, this node's control port and
    /// token file, <paramref name="sync"/> (default: <c>tableCapacity</c> 16384), <see cref="AllFull"/>, the data plane,
    /// and <see cref="HarnessAloneAfter"/> for that sync section.
    /// </summary>
    public NodeConfig Config(int member, DataPlaneConfig dataPlane, SyncConfig? sync = null)
    {
        sync ??= new SyncConfig { TableCapacity = 16_384 };
        return new()
        {
            Cluster = new ClusterConfig
            {
                KeyFile = Encrypted ? KeyFileName : null,
                Insecure = !Encrypted,
                Mode = Mode,
                Transport = Transport?.Name ?? ClusterConfig.TransportUdp,
                Members = NodeConfigWriter.HostMembers(Sync, FullSync, transportAddress: Transport?.Address),
                AloneAfter = HarnessAloneAfter(sync),
            },
            Node = new NodeSection { MemberId = member, Control = new ControlConfig { Port = Control[member - 1], TokenFile = TokenFileName } },
            Sync = sync,
            Policy = AllFull,
            DataPlane = dataPlane,
        };
    }

    /// <summary>Writes member <paramref name="member"/>'s <see cref="Config"/>, changed by <paramref name="adjust"/>; returns its path.</summary>
    public string Write(int member, DataPlaneConfig dataPlane, SyncConfig? sync = null, Func<NodeConfig, NodeConfig>? adjust = null)
    {
        var config = Config(member, dataPlane, sync);
        return Write(member, adjust is null ? config : adjust(config));
    }

    /// <summary>
    /// Tests start member 1 alone on purpose and the others once it serves: 2 s instead of the production 10 s before a
    /// member that hears nobody starts first (each such start waited 8 s for nothing), or the three dead intervals of
    /// <paramref name="sync"/> when longer (the least the node accepts). Tests of the join planner's silence rules set
    /// their own.
    /// </summary>
    public static TimeSpan HarnessAloneAfter(SyncConfig sync)
    {
        var threeDeadIntervals = sync.HeartbeatInterval * sync.DeadAfterMissedHeartbeats * 3;
        return threeDeadIntervals > s_harnessAloneAfter ? threeDeadIntervals : s_harnessAloneAfter;
    }

    private static readonly TimeSpan s_harnessAloneAfter = TimeSpan.FromSeconds(2);

    /// <summary>Writes <paramref name="config"/> as member <paramref name="member"/>'s configuration file; returns its path.</summary>
    public string Write(int member, NodeConfig config) => NodeConfigWriter.Write(ConfigPath(member), config);

    /// <summary>Starts member <paramref name="member"/> from its configuration file (again, after a kill: same file, same ports).</summary>
    public CliProcess Start(int member)
    {
        var n = Track(CliProcess.Start($"member {member}", [], "node", "--config", ConfigPath(member)));
        _nodes[member] = n;
        return n;
    }

    /// <summary>
    /// Starts member <paramref name="member"/> by another command that runs a node from its configuration file (for
    /// example <c>replay --trace FILE --config PATH</c>); it is then polled, watched and killed as the member.
    /// </summary>
    public CliProcess StartAs(int member, params string[] args)
    {
        var n = Track(CliProcess.Start($"member {member} ({args.FirstOrDefault()})", [], args));
        _nodes[member] = n;
        return n;
    }

    /// <summary>Starts another <c>clustersync</c> command (its log is collected and it is killed with the cluster).</summary>
    public CliProcess StartCli(params string[] args) => Track(CliProcess.Start(args));

    /// <summary>Runs a <c>clustersync</c> command to completion (bounded by <paramref name="timeout"/>); its log is collected with the cluster's.</summary>
    public async Task<CliProcess> RunAsync(TimeSpan timeout, params string[] args)
    {
        var p = StartCli(args);
        await p.WaitForExitAsync(timeout).ConfigureAwait(false);
        return p;
    }

    public IEnumerable<CliProcess> Running => _nodes.Where(n => n is { HasExited: false }).Select(n => n!);

    /// <summary>Every process this cluster started, newest life of each member last, as one text (name, state, output tail).</summary>
    public string Logs() => string.Join("\n", _started.Select(p => p.Tail()));

    public async Task<JsonElement?> StatusAsync(int member) => await GetJsonAsync(member, "/status").ConfigureAwait(false);

    /// <summary>GET a JSON document from the member's control endpoint; null while it does not answer (yet).</summary>
    public async Task<JsonElement?> GetJsonAsync(int member, string path)
    {
        string endpoint = Endpoint(member);
        if (_nodes[member] is not { } node || !node.ControlReady(endpoint))
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

    public async Task<byte[]> GetBytesAsync(int member, string path) => await _http.GetByteArrayAsync($"{Endpoint(member)}{path}").ConfigureAwait(false);

    /// <summary>POST with the cluster's token; fails the test on any answer but success.</summary>
    public async Task PostAsync(int member, string pathAndQuery)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Endpoint(member)}{pathAndQuery}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        using var response = await _http.SendAsync(request).ConfigureAwait(false);
        Assert.True(response.IsSuccessStatusCode, $"POST {pathAndQuery} to member {member}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
    }

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds; fails at <paramref name="timeout"/> (default
    /// <see cref="DefaultTimeout"/>) or as soon as a member that was running when the wait began exits (not killed or
    /// terminated by the test), with every log.
    /// </summary>
    public Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var watched = Running.ToList();
        return Wait.WaitUntilAsync(condition, what, timeout ?? DefaultTimeout, Logs, () =>
        {
            foreach (var n in watched)
            {
                if (n.HasExited && !n.Stopped)
                {
                    Assert.Fail($"{n.Name} exited ({n.ExitCode}) while waiting for {what}:\n{Logs()}");
                }
            }
        });
    }

    /// <inheritdoc cref="WaitUntilAsync(Func{Task{bool}}, string, TimeSpan?)"/>
    public Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) => WaitUntilAsync(() => Task.FromResult(condition()), what, timeout);

    /// <summary>Polls member <paramref name="member"/>'s <c>/status</c> until <paramref name="done"/> holds for it; returns that document.</summary>
    public async Task<JsonElement> WaitForStatusAsync(int member, Func<JsonElement, bool> done, string what, TimeSpan? timeout = null)
    {
        JsonElement last = default;
        await WaitUntilAsync(async () => await StatusAsync(member).ConfigureAwait(false) is { } s && done(last = s), what, timeout).ConfigureAwait(false);
        return last;
    }

    /// <summary>Polls every member's <c>/status</c> (index member - 1) until all answer and <paramref name="done"/> holds for them; returns those documents.</summary>
    public async Task<JsonElement[]> WaitForStatusesAsync(Func<JsonElement[], bool> done, string what, TimeSpan? timeout = null)
    {
        var last = new JsonElement[Members];
        await WaitUntilAsync(async () =>
        {
            for (int m = 1; m <= Members; m++)
            {
                if (await StatusAsync(m).ConfigureAwait(false) is not { } s)
                {
                    return false;
                }

                last[m - 1] = s;
            }

            return done(last);
        }, what, timeout).ConfigureAwait(false);
        return last;
    }

    /// <summary>Waits until member <paramref name="member"/> reports <paramref name="state"/> (<c>Active</c>, <c>Standby</c>, ...).</summary>
    public Task WaitForStateAsync(int member, string state, TimeSpan? timeout = null)
        => WaitUntilAsync(async () => MemberState(await StatusAsync(member).ConfigureAwait(false)) == state, $"member {member} {state}", timeout);

    /// <summary>The table digest (live count, XOR of key/version hashes) of a <c>/status</c> document or a digest object.</summary>
    public static (long Count, string Xor) Digest(JsonElement statusOrDigest)
    {
        var d = statusOrDigest.TryGetProperty("digest", out var inner) ? inner : statusOrDigest;
        return (d.GetProperty("count").GetInt64(), d.GetProperty("xor").GetString()!);
    }

    public static string? MemberState(JsonElement? status)
        => status is { } s ? s.GetProperty("membership").GetProperty("state").GetString() : null;

    /// <summary>The member's state in <paramref name="status"/>, appended to <paramref name="seen"/> when it differs from the last one there.</summary>
    public static string TrackState(JsonElement status, List<string> seen)
    {
        var state = MemberState(status)!;
        if (seen.Count == 0 || seen[^1] != state)
        {
            seen.Add(state);
        }

        return state;
    }

    /// <summary>
    /// The member's own changes are all out and acknowledged: nothing pending, and every live peer acknowledged its
    /// last data sequence (with the generator held or finished, nothing new can start meanwhile).
    /// </summary>
    public static bool Settled(JsonElement s)
    {
        ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
        return s.GetProperty("pending").GetInt32() == 0
            && s.GetProperty("peers").EnumerateArray().Where(p => p.GetProperty("alive").GetBoolean()).All(p => p.GetProperty("ackedThrough").GetUInt64() == sent);
    }

    /// <summary>The member's generator (or other bounded data plane) has finished.</summary>
    public static bool Finished(JsonElement s) => s.GetProperty("dataPlane").GetProperty("finished").GetBoolean();

    /// <summary>Nothing pending, and every peer (alive or not) acknowledged the member's last data sequence.</summary>
    public static bool AcknowledgedByAll(JsonElement s)
    {
        ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
        return s.GetProperty("pending").GetInt32() == 0 && s.GetProperty("peers").EnumerateArray().All(p => p.GetProperty("ackedThrough").GetUInt64() == sent);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _started)
        {
            await p.DisposeAsync().ConfigureAwait(false);
        }

        if (_output is not null && _started.Count > 0)
        {
            try
            {
                _output.WriteLine(Logs());
            }
            catch (InvalidOperationException)
            {
                // The test has already finished (output helper closed).
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

    private CliProcess Track(CliProcess p)
    {
        _started.Add(p);
        return p;
    }
}
