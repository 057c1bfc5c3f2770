using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Classification;
using ClusterSync.Cli.Commands;
using ClusterSync.Connections;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Control;
using ClusterSync.Node.DataPlanes;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Workload;

namespace ClusterSync.Cli.Demo;

/// <summary>The sync policy the demo cluster runs.</summary>
internal enum DemoPolicy
{
    /// <summary>The default service classes (mission-critical full, short-lived delayed 3 s, non-sync none, default full).</summary>
    Static,

    /// <summary>Every connection synchronized at once (the baseline; used by <c>bench failover</c>).</summary>
    SyncAll,

    /// <summary>
    /// The default classes with adaptive mode on and no <c>adaptive.model</c>: every member uses the shipped model
    /// (models/lifetime.zip next to the binary); mission-critical stays never-skip.
    /// </summary>
    Adaptive,
}

internal sealed record DemoOptions
{
    /// <summary>Seconds of churn through the Active before it is killed.</summary>
    public double ChurnSeconds { get; init; } = 8;

    /// <summary>Changes per second the data plane offers the Active.</summary>
    public double Rate { get; init; } = 5000;

    /// <summary>The generator's population (live connections it keeps).</summary>
    public int Connections { get; init; } = 20_000;

    /// <summary>Fill first: at <see cref="FillRate"/> until member 1 holds this many connections, before the others join (0: no fill phase).</summary>
    public int MinReplica { get; init; }

    /// <summary>Changes per second of the fill phase (then <see cref="Rate"/> for <see cref="ChurnSeconds"/>).</summary>
    public double FillRate { get; init; } = 100_000;

    public DemoPolicy Policy { get; init; } = DemoPolicy.Adaptive;

    /// <summary>Connection templates on for the classes that are not synced at once (docs/templates.md).</summary>
    public bool Templates { get; init; }

    /// <summary>
    /// Connections live as their service does (<see cref="ChangeGenerator.WithLifetimes"/> over
    /// <see cref="ServiceMix.Default"/>: heavy-tailed lifetimes per service); false: the population mode (random
    /// destroys over a fixed population, used to fill large tables fast).
    /// </summary>
    public bool ServiceLifetimes { get; init; } = true;

    public int Seed { get; init; } = 7;

    /// <summary>The members' heartbeat interval (<c>sync.heartbeatInterval</c>).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Heartbeats missed before a member counts as dead (<c>sync.deadAfterMissedHeartbeats</c>).</summary>
    public int DeadAfterMissedHeartbeats { get; init; } = 3;

    /// <summary>How the members' sync threads are scheduled (<c>sync.scheduler</c>; default: the time-sharing policy).</summary>
    public SchedulerConfig Scheduler { get; init; } = new();

    public CliLauncher Launcher { get; init; } = CliLauncher.Current();

    /// <summary>Where the members run (null: all on this machine's loopback, in this network namespace).</summary>
    public IDemoNetwork? Network { get; init; }

    /// <summary>
    /// After the takeover, also read both survivors' <c>/failover/heard</c> logs and the new Active's <c>/status</c>
    /// once its data-plane plugin (if any) finished committing (<see cref="DemoResult.Heard"/>, <see cref="DemoResult.ActiveStatus"/>).
    /// </summary>
    public bool CollectHeard { get; init; }
}

/// <summary>
/// Members in network namespaces of their own (<c>bench failover --data-plane conntrack</c>): each member's sync
/// address, how it is started, its data plane, and how this process reaches its loopback (control endpoint, feed).
/// </summary>
internal interface IDemoNetwork
{
    /// <summary>The IP address of member <paramref name="member"/>'s sync link and full sync server.</summary>
    string SyncHost(int member);

    /// <summary>How member <paramref name="member"/> is started, from how this process starts a <c>clustersync</c>.</summary>
    CliLauncher Launcher(int member, CliLauncher launcher);

    /// <summary>A TCP socket in member <paramref name="member"/>'s network namespace (to reach its 127.0.0.1).</summary>
    Socket CreateTcpSocket(int member);

    /// <summary>Member <paramref name="member"/>'s data plane; null: the demo's (member 1 fed by the demo, the others none).</summary>
    DataPlaneConfig? DataPlane(int member);
}

/// <summary>What one demo run measured (see <see cref="FailoverAccounting"/> for the definitions).</summary>
internal sealed record DemoResult
{
    public required FailoverTally Tally { get; init; }

    public required double FailoverMs { get; init; }

    public required double DetectionMs { get; init; }

    public required int NewActive { get; init; }

    public required bool CapturedBeforePromotion { get; init; }

    /// <summary>
    /// A survivor took over before the kill, or saw the Active dead before it: a false failover (heartbeats starved on
    /// an overloaded machine). The run then measures that, not the kill, and fails.
    /// </summary>
    public required bool PrematureTakeover { get; init; }

    /// <summary>Takeovers after the kill beyond the one expected (e.g. the other Standby, while the new Active's commit held up its heartbeats).</summary>
    public required long ExtraTakeovers { get; init; }

    /// <summary>Survivors' failover counts and death-detection times relative to the kill, for the report.</summary>
    public required string SurvivorsSeen { get; init; }

    public required int Committed { get; init; }

    /// <summary>From the kill to the new Active's first connection handed to its data plane (its commit began), ms.</summary>
    public double FirstCommitMs { get; init; }

    /// <summary>From the kill to its last connection committed (its commit ended; it then reports Active), ms.</summary>
    public double LastCommitMs { get; init; }

    /// <summary>From the kill to the new Active announcing Promoting (its decision to take over), ms.</summary>
    public double PromotingMs { get; init; }

    /// <summary>Connection templates the new Active committed.</summary>
    public int TemplatesCommitted { get; init; }

    public required long ChangesFed { get; init; }

    public required double ChurnSeconds { get; init; }

    public required double ChangesPerSecondAtKill { get; init; }

    public required long Messages { get; init; }

    public required long MessagesSyncAll { get; init; }

    public required long Datagrams { get; init; }

    public required double TotalSeconds { get; init; }

    /// <summary>Static 3 s for the same changes, counted offline by the data plane (null when not counted).</summary>
    public StaticDelayCount? Static3s { get; init; }

    /// <summary>The model member 1 decided with (adaptive mode), as its /status named it just before the kill.</summary>
    public string? Model { get; init; }

    public string? ModelSource { get; init; }

    public string? ModelTrainedAt { get; init; }

    /// <summary>Member 1's adaptive decisions (now, delayed, never, ...) just before the kill.</summary>
    public IReadOnlyDictionary<string, long>? Decisions { get; init; }

    /// <summary>With <see cref="DemoOptions.CollectHeard"/>: each survivor's <c>/failover/heard</c> (members 2 and 3, in order).</summary>
    public IReadOnlyList<JsonElement>? Heard { get; init; }

    /// <summary>With <see cref="DemoOptions.CollectHeard"/>: the new Active's <c>/status</c> after its plugin commit ended.</summary>
    public JsonElement? ActiveStatus { get; init; }

    /// <summary>The kill time (Unix ms, this machine's clock).</summary>
    public double KillUnixMs { get; init; }

    /// <summary>The new Active's /failover document at the takeover.</summary>
    public JsonElement? ActiveFailover { get; init; }

    /// <summary>Both survivors' last <c>/failover</c> documents (members 2 and 3, in order; after the plugin commit with <see cref="DemoOptions.CollectHeard"/>).</summary>
    public IReadOnlyList<JsonElement> SurvivorFailover { get; init; } = [];
}

/// <summary>
/// <c>clustersync demo</c>: three <c>clustersync node</c> OS processes on loopback (a generated key and configurations
/// in a temporary directory, ephemeral ports), a mixed workload from <see cref="ChangeGenerator"/> streamed into the
/// Active member's data plane (<see cref="DataPlaneFeed"/>), the Active SIGKILLed while the changes flow, and the
/// accounting of what the new Active committed against what was alive and what was synchronized.
/// Processes and files are removed whatever happens (the caller's token cancels on Ctrl+C/SIGTERM).
/// </summary>
internal sealed class DemoRunner(DemoOptions options, Action<string> progress)
{
    private const int Members = 3;
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);
    private HttpClient? _client;
    private readonly int[] _sync = new int[Members];
    private readonly int[] _fullSync = new int[Members];
    private readonly int[] _control = new int[Members];
    private readonly ChildProcess?[] _nodes = new ChildProcess?[Members];

    public async Task<DemoResult> RunAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        var dir = Directory.CreateTempSubdirectory("clustersync-demo-").FullName;
        try
        {
            return await RunInAsync(dir, started, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            foreach (var n in _nodes)
            {
                n?.Dispose();
            }

            _client?.Dispose();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task<DemoResult> RunInAsync(string dir, Stopwatch started, CancellationToken token)
    {
        KeygenCommand.Write(Path.Combine(dir, "cluster.key"), ClusterKey.Generate());
        ControlTokenFile.Write(Path.Combine(dir, "control.token")); // a token per run: the members' POST routes are closed to other local processes
        var ports = new HashSet<int>();
        for (int i = 0; i < Members; i++)
        {
            _sync[i] = FreePort(SocketType.Dgram, ports);
            _fullSync[i] = FreePort(SocketType.Stream, ports);
            _control[i] = FreePort(SocketType.Stream, ports);
        }

        int feedPort = FreePort(SocketType.Stream, ports);
        var configs = Enumerable.Range(1, Members).Select(m => WriteConfig(dir, m, m == 1 ? feedPort : 0)).ToArray();

        progress($"starting member 1 (priority 100) in {dir}");
        _nodes[0] = ChildProcess.Start(LauncherOf(1), "node", "--config", configs[0]);
        await WaitUntilAsync(async () => await StateAsync(1, token).ConfigureAwait(false) == "Active", "member 1 Active", token).ConfigureAwait(false);

        // The data plane: the demo plays member 1's kernel; what it has generated is what is alive there.
        var catalog = new ServiceClassCatalog(PolicyOptionsFor(options.Policy));
        var generator = options.ServiceLifetimes
            ? ChangeGenerator.WithLifetimes(options.Seed, options.Connections, ServiceMix.Default)
            : new ChangeGenerator(options.Seed, options.Connections);
        using var feed = new FeedWriter(feedPort, generator, catalog,
            options.MinReplica > 0 ? options.FillRate : options.Rate, options.Network is { } net ? () => net.CreateTcpSocket(1) : null);
        if (options.MinReplica > 0)
        {
            // A large table: fill member 1 alone, then the others join it by full sync (as a cluster is built).
            feed.Start();
            progress($"data plane: filling member 1 at {options.FillRate:N0} changes/s until it holds {options.MinReplica:N0} connections");
            await WaitUntilAsync(async () =>
            {
                feed.ThrowIfFailed();
                int size = await TableSizeAsync(1, token).ConfigureAwait(false);
                if (Environment.GetEnvironmentVariable("CLUSTERSYNC_DEMO_DEBUG") == "1")
                {
                    progress($"member 1 holds {size:N0} connections; {feed.Fed:N0} changes fed");
                }

                return size >= options.MinReplica;
            }, $"member 1 holding {options.MinReplica:N0} connections", token).ConfigureAwait(false);
            feed.SetRate(options.Rate);
        }

        progress("member 1 is Active; starting members 2 and 3 (they join by full sync)");
        _nodes[1] = ChildProcess.Start(LauncherOf(2), "node", "--config", configs[1]);
        _nodes[2] = ChildProcess.Start(LauncherOf(3), "node", "--config", configs[2]);
        await WaitUntilAsync(async () => await StateAsync(2, token).ConfigureAwait(false) == "Standby"
            && await StateAsync(3, token).ConfigureAwait(false) == "Standby", "members 2 and 3 Standby", token).ConfigureAwait(false);
        if (options.MinReplica == 0)
        {
            feed.Start();
        }

        progress($"data plane: {options.Rate:N0} changes/s into member 1 for {options.ChurnSeconds:N0} s");
        var churn = Stopwatch.StartNew();
        while (churn.Elapsed.TotalSeconds < options.ChurnSeconds)
        {
            feed.ThrowIfFailed();
            EnsureRunning("while the workload runs");
            await Task.Delay(Math.Clamp((int)((options.ChurnSeconds - churn.Elapsed.TotalSeconds) * 1000), 1, 100), token).ConfigureAwait(false);
        }

        // The last counters of member 1 before it dies (a few ms before the kill): sync messages vs. changes.
        var lastStatus = await GetJsonAsync(1, "/status", token).ConfigureAwait(false) ?? throw new DemoException("member 1 does not answer /status");
        var counters = lastStatus.GetProperty("counters");
        long messages = counters.GetProperty("updates_sent").GetInt64();
        long messagesSyncAll = counters.GetProperty("events_submitted").GetInt64();
        long datagrams = counters.GetProperty("datagrams_sent").GetInt64();
        string? model = null, modelSource = null, modelTrainedAt = null;
        Dictionary<string, long>? decisions = null;
        if (lastStatus.TryGetProperty("adaptive", out var adaptive) && adaptive.ValueKind == JsonValueKind.Object)
        {
            model = adaptive.GetProperty("model").GetString();
            modelSource = adaptive.TryGetProperty("modelSource", out var ms) ? ms.GetString() : null;
            modelTrainedAt = adaptive.TryGetProperty("modelTrainedAt", out var mt) ? mt.GetString() : null;
            decisions = adaptive.GetProperty("decisions").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64(), StringComparer.Ordinal);
            if (model is null)
            {
                var why = adaptive.TryGetProperty("coldStartReason", out var r) ? r.GetString() : null;
                progress($"note: member 1 runs adaptive mode without a model (cold start){(why is null ? "" : $": {why}")}");
            }
        }
        long takeoversBefore = 0;
        for (int m = 2; m <= Members; m++)
        {
            takeoversBefore += (await GetJsonAsync(m, FailoverRoutes.StatusPath, token).ConfigureAwait(false))?.GetProperty("failovers").GetInt64() ?? 0;
        }

        // Kill -9 the Active between two batches of the data plane: the changes are flowing (the previous batch is
        // still being submitted, queued or in flight), and the alive set is exact.
        var kill = feed.StopAndKill(_nodes[0]!);
        progress($"SIGKILL member 1 with {kill.Alive.Count:N0} connections alive, at {kill.RecentRate:N0} changes/s");

        // The survivors: the new Active (serving since) and both captures (what each held when it saw member 1 die).
        JsonElement[] docs = new JsonElement[Members];
        int newActive = 0;
        await WaitUntilAsync(async () =>
        {
            newActive = 0;
            for (int m = 2; m <= Members; m++)
            {
                if (await GetJsonAsync(m, FailoverRoutes.StatusPath, token).ConfigureAwait(false) is not { } d)
                {
                    return false;
                }

                docs[m - 1] = d;
                if (d.GetProperty("state").GetString() == "Active" && d.GetProperty("servingUnixMs").GetDouble() > kill.UnixMs)
                {
                    newActive = m;
                }
            }

            return newActive != 0 && docs.Skip(1).All(d => d.TryGetProperty("capture", out _));
        }, "a new Active and both survivors' captures", token, skipMember: 1).ConfigureAwait(false);

        var active = docs[newActive - 1];
        var capture = active.GetProperty("capture");
        JsonElement? activeStatus = null;
        List<JsonElement>? heard = null;
        if (options.CollectHeard)
        {
            // A data-plane plugin commits after the member announced Active: wait for that commit to end (finished,
            // failed or timed out: /readyz serving), then read what each survivor heard meanwhile. Polled on /readyz,
            // not /status: /status counts the table under its lock, and polling it while a 1,000,000-entry member
            // commits held up that member's control tick for seconds (the tick takes the same lock).
            await WaitUntilAsync(() => ReadyAsync(newActive, token), $"member {newActive}'s data-plane commit to end (/readyz serving)", token, skipMember: 1, pollMs: 50).ConfigureAwait(false);
            activeStatus = await GetJsonAsync(newActive, "/status", token).ConfigureAwait(false) ?? throw new DemoException($"member {newActive} does not answer /status");
            heard = [];
            for (int m = 2; m <= Members; m++)
            {
                heard.Add(await GetJsonAsync(m, FailoverRoutes.HeardPath, token).ConfigureAwait(false) ?? throw new DemoException($"member {m} does not answer {FailoverRoutes.HeardPath}"));
            }

            // The takeover counts again, now that the commit is over (a survivor that missed the new Active while it
            // committed takes over too).
            for (int m = 2; m <= Members; m++)
            {
                docs[m - 1] = await GetJsonAsync(m, FailoverRoutes.StatusPath, token).ConfigureAwait(false) ?? docs[m - 1];
            }
        }

        // The tables are fetched after the commit and the heard logs: encoding a 1,000,000-entry table allocates hundreds
        // of MB on the member that serves it; fetched during the commit, the other survivor stalled 0.5-0.9 s and
        // declared the new Active dead (docs/conntrack.md, "Commit at 1M").
        var captures = new List<IReadOnlyDictionary<ConnectionKey, ConnectionEntry>>();
        for (int m = 2; m <= Members; m++)
        {
            // The capture holds keys only (what the accounting matches on): no entries were copied on the takeover path.
            var keys = FailoverRoutes.DecodeKeys(await GetBytesAsync(m, FailoverRoutes.CapturePath, token).ConfigureAwait(false));
            var byKey = new Dictionary<ConnectionKey, ConnectionEntry>(keys.Length);
            foreach (var k in keys)
            {
                byKey[k] = default;
            }

            captures.Add(byKey);
        }

        if (Environment.GetEnvironmentVariable("CLUSTERSYNC_DEMO_DEBUG") == "1")
        {
            progress(_nodes[newActive - 1]!.Output);
        }

        var committed = RecordStream.DecodeEntries(await GetBytesAsync(newActive, FailoverRoutes.CommittedPath, token).ConfigureAwait(false));
        var templates = FailoverRoutes.DecodeTemplates(await GetBytesAsync(newActive, FailoverRoutes.TemplatesPath, token).ConfigureAwait(false));
        var tally = FailoverAccounting.Compare(kill.Alive, captures, committed, templates, (long)kill.UnixMs);

        return new DemoResult
        {
            Tally = tally,
            FailoverMs = Math.Round(active.GetProperty("servingUnixMs").GetDouble() - kill.UnixMs, 1),
            DetectionMs = Math.Round(capture.GetProperty("detectedUnixMs").GetDouble() - kill.UnixMs, 1),
            NewActive = newActive,
            CapturedBeforePromotion = capture.GetProperty("beforePromotion").GetBoolean(),
            SurvivorsSeen = string.Join("; ", docs.Skip(1).Select(d => string.Create(CultureInfo.InvariantCulture,
                $"member {d.GetProperty("memberId").GetInt32()}: {d.GetProperty("failovers").GetInt64()} takeovers, Active seen dead {d.GetProperty("capture").GetProperty("detectedUnixMs").GetDouble() - kill.UnixMs:F1} ms after the kill"))),
            PrematureTakeover = takeoversBefore > 0 || docs.Skip(1).Any(d => d.GetProperty("capture").GetProperty("detectedUnixMs").GetDouble() < kill.UnixMs),
            ExtraTakeovers = docs.Skip(1).Sum(d => d.GetProperty("failovers").GetInt64()) - takeoversBefore - 1,
            Committed = committed.Count,
            FirstCommitMs = SinceKill(active, "commitStartedUnixMs", kill.UnixMs),
            LastCommitMs = SinceKill(active, "commitFinishedUnixMs", kill.UnixMs),
            PromotingMs = SinceKill(active, "promotingUnixMs", kill.UnixMs),
            TemplatesCommitted = templates.Count,
            ChangesFed = kill.ChangesFed,
            ChurnSeconds = Math.Round(churn.Elapsed.TotalSeconds, 2),
            ChangesPerSecondAtKill = Math.Round(kill.RecentRate),
            Messages = messages,
            MessagesSyncAll = messagesSyncAll,
            Datagrams = datagrams,
            TotalSeconds = Math.Round(started.Elapsed.TotalSeconds, 1),
            Static3s = kill.Static3s,
            Model = model,
            ModelSource = modelSource,
            ModelTrainedAt = modelTrainedAt,
            Decisions = decisions,
            Heard = heard,
            ActiveStatus = activeStatus,
            KillUnixMs = kill.UnixMs,
            ActiveFailover = active,
            SurvivorFailover = [.. docs.Skip(1)],
        };
    }

    public static PolicyOptions PolicyOptionsFor(DemoPolicy policy, bool templates = false)
    {
        var p = policy switch
        {
            DemoPolicy.SyncAll => new PolicyOptions { Classes = [new ServiceClassOptions { Name = ServiceClassNames.Default, Policy = "full" }], Rules = [] },
            _ => new PolicyOptions(),
        };
        return !templates ? p : p with
        {
            // Every class (adaptive mode may delay any but the never-skip one; a class synced at once only pays the
            // template records): 5 connections of one shape within 10 s, as the demo's workload spreads its connections
            // over 251 servers and a few ports each.
            Classes = [.. p.Classes.Select(c => c with { Templates = new TemplateOptions { Threshold = 5, WindowSeconds = 10, LifetimeSeconds = 60 } })],
        };
    }

    /// <summary>
    /// Member <paramref name="member"/>'s configuration from the node's own records, written by
    /// <see cref="NodeConfigWriter"/> (the one way a node configuration is written; the process tests use it too).
    /// </summary>
    private string WriteConfig(string dir, int member, int feedPort)
    {
        var config = new NodeConfig
        {
            Cluster = new ClusterConfig
            {
                KeyFile = "cluster.key",
                Mode = ClusterConfig.ModeHighAvailability,
                Members = options.Network is { } network
                    ? [.. NodeConfigWriter.HostMembers(_sync, _fullSync).Select(m => m with { Address = string.Create(CultureInfo.InvariantCulture, $"{network.SyncHost(m.Id)}:{_sync[m.Id - 1]}") })]
                    : NodeConfigWriter.HostMembers(_sync, _fullSync),
                // The demo starts member 1 alone on loopback, where no other cluster can exist: it serves after 1 s
                // of silence instead of the production 10 s (cluster.aloneAfter), at least three dead intervals.
                AloneAfter = TimeSpan.FromMilliseconds(Math.Max(1000, 3 * options.DeadAfterMissedHeartbeats * options.HeartbeatInterval.TotalMilliseconds)),
            },
            Node = new NodeSection { MemberId = member, Control = new ControlConfig { Port = _control[member - 1], TokenFile = "control.token" } },
            Sync = new SyncConfig
            {
                TableCapacity = Math.Max(16_384, options.Connections * 2),
                HeartbeatInterval = options.HeartbeatInterval,
                DeadAfterMissedHeartbeats = options.DeadAfterMissedHeartbeats,
                Scheduler = options.Scheduler,
            },
            Policy = PolicyOptionsFor(options.Policy, options.Templates),
            DataPlane = options.Network?.DataPlane(member) ?? (feedPort != 0
                ? new DataPlaneConfig { Source = DataPlaneConfig.SourceFeed, FeedPort = feedPort }
                : new DataPlaneConfig { Source = DataPlaneConfig.SourceNone }),
            // Adaptive: no adaptive.model, so each member uses the shipped model next to its binary.
            Adaptive = new AdaptiveOptions { Enabled = options.Policy == DemoPolicy.Adaptive },
        };
        return NodeConfigWriter.Write(Path.Combine(dir, $"node{member}.json"), config);
    }

    /// <summary>A timestamp of the new Active's /failover document minus the kill time (ms), or -1 when it does not carry it.</summary>
    private static double SinceKill(JsonElement doc, string property, double killUnixMs)
        => doc.TryGetProperty(property, out var v) && v.GetDouble() > 0 ? Math.Round(v.GetDouble() - killUnixMs, 1) : -1;

    /// <summary>
    /// The client for the members' control endpoints; with <see cref="DemoOptions.Network"/> its connections are made
    /// from a socket in the member's namespace (each control endpoint listens on its namespace's 127.0.0.1).
    /// </summary>
    private HttpClient Http => _client ??= options.Network is not { } network
        ? new HttpClient { Timeout = TransferTimeout }
        : new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, token) =>
            {
                int member = Array.IndexOf(_control, context.DnsEndPoint.Port) + 1;
                var socket = member > 0 ? network.CreateTcpSocket(member) : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.NoDelay = true;
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        }) { Timeout = TransferTimeout };

    /// <summary>
    /// A poll gives up after 3 s (the next one asks again); a transfer (a 1,000,000-entry capture or committed table,
    /// encoded by a member of a loaded machine) after 60 s: 3 s was not enough at load average 26.
    /// </summary>
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(3), TransferTimeout = TimeSpan.FromSeconds(60);

    private static int FreePort(SocketType type, HashSet<int> taken)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            using var s = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Dgram ? ProtocolType.Udp : ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)s.LocalEndPoint!).Port;
            if (taken.Add(port))
            {
                return port;
            }
        }

        throw new DemoException("no free loopback port");
    }

    private CliLauncher LauncherOf(int member) => options.Network?.Launcher(member, options.Launcher) ?? options.Launcher;

    private string Endpoint(int member) => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{_control[member - 1]}");

    // Poll a node only after it logged its control endpoint listening (the managed HttpListener can fail its own
    // start when a client connects while it starts).
    private bool Ready(int member) => _nodes[member - 1] is { } n && n.HasLogged($"Control endpoint on {Endpoint(member)}/");

    private async Task<JsonElement?> GetJsonAsync(int member, string path, CancellationToken token)
    {
        if (!Ready(member))
        {
            return null;
        }

        try
        {
            using var poll = CancellationTokenSource.CreateLinkedTokenSource(token);
            poll.CancelAfter(PollTimeout);
            using var doc = JsonDocument.Parse(await Http.GetStringAsync(Endpoint(member) + path, poll.Token).ConfigureAwait(false));
            return doc.RootElement.Clone();
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException || (ex is OperationCanceledException && !token.IsCancellationRequested))
        {
            return null;
        }
    }

    /// <summary>Whether <c>/readyz</c> answers 200 (Active and no data-plane commit pending).</summary>
    private async Task<bool> ReadyAsync(int member, CancellationToken token)
    {
        try
        {
            using var poll = CancellationTokenSource.CreateLinkedTokenSource(token);
            poll.CancelAfter(PollTimeout);
            using var response = await Http.GetAsync(Endpoint(member) + "/readyz", poll.Token).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is OperationCanceledException && !token.IsCancellationRequested))
        {
            return false;
        }
    }

    private async Task<byte[]> GetBytesAsync(int member, string path, CancellationToken token)
        => await Http.GetByteArrayAsync(Endpoint(member) + path, token).ConfigureAwait(false);

    private async Task<string?> StateAsync(int member, CancellationToken token)
        => await GetJsonAsync(member, "/status", token).ConfigureAwait(false) is { } s ? s.GetProperty("membership").GetProperty("state").GetString() : null;

    private async Task<int> TableSizeAsync(int member, CancellationToken token)
        => await GetJsonAsync(member, "/status", token).ConfigureAwait(false) is { } s ? s.GetProperty("tableSize").GetInt32() : 0;

    private void EnsureRunning(string when, int skipMember = 0)
    {
        for (int i = 0; i < Members; i++)
        {
            if (i + 1 != skipMember && _nodes[i] is { HasExited: true } n)
            {
                throw new DemoException($"member {i + 1} exited {when}:\n{n.Output}");
            }
        }
    }

    private async Task WaitUntilAsync(Func<Task<bool>> condition, string what, CancellationToken token, int skipMember = 0, int pollMs = 10)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition().ConfigureAwait(false))
        {
            EnsureRunning($"while waiting for {what}", skipMember);
            if (clock.Elapsed > StepTimeout)
            {
                throw new DemoException($"timed out after {StepTimeout.TotalSeconds:N0} s waiting for {what}:\n"
                    + string.Join("\n----\n", _nodes.Where(n => n is not null).Select(n => n!.Output)));
            }

            await Task.Delay(pollMs, token).ConfigureAwait(false);
        }
    }
}

/// <summary>The demo's cluster did not behave (a node exited, a step timed out): exit 1 with the reason.</summary>
internal sealed class DemoException(string message) : Exception(message);
