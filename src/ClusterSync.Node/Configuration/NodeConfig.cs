using ClusterSync.Engine;
using ClusterSync.Policy;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The node configuration file (<c>clustersync node --config FILE</c>): what is configured, immutable, validated as a
/// whole by <see cref="NodeConfigLoader"/>. JSON names are the camelCase property names.
/// </summary>
public sealed record NodeConfig
{
    public ClusterConfig Cluster { get; init; } = new();

    public NodeSection Node { get; init; } = new();

    public SyncConfig Sync { get; init; } = new();

    public PolicyOptions Policy { get; init; } = new();

    public DataPlaneConfig DataPlane { get; init; } = new();

    public PluginsConfig Plugins { get; init; } = new();

    public Adaptive.Controller.AdaptiveOptions Adaptive { get; init; } = new();

    public Telemetry.TelemetryOptions Telemetry { get; init; } = new();

    /// <summary>State-change hooks and virtual addresses (<see cref="HooksConfig"/>).</summary>
    public HooksConfig Hooks { get; init; } = new();
}

/// <summary>What every member of the cluster shares: the key and the member list.</summary>
public sealed record ClusterConfig
{
    /// <summary>The cluster key file (made by <c>clustersync keygen</c>); relative paths are relative to the configuration file.</summary>
    public string? KeyFile { get; init; }

    /// <summary>No encryption. Must be explicit when there is no key file.</summary>
    public bool Insecure { get; init; }

    /// <summary><c>high-availability</c> (one Active member, the others Standby) or <c>load-sharing</c> (every synchronized member Active).</summary>
    public string Mode { get; init; } = ModeHighAvailability;

    /// <summary>A higher-ranked member takes the Active role back when it returns (off by default, as in ClusterXL).</summary>
    public bool Preemption { get; init; }

    /// <summary>
    /// A starting member that hears no synchronized peer (and not every configured member starting) for this long
    /// starts as the cluster's first member, without a full sync (<see cref="ClusterSync.Membership.JoinPlanner"/>'s <c>aloneAfter</c>).
    /// From three dead intervals to one hour.
    /// </summary>
    public TimeSpan AloneAfter { get; init; } = ClusterSync.Membership.JoinPlanner.DefaultAloneAfter;

    /// <summary>The most <see cref="AloneAfter"/> may be.</summary>
    public static readonly TimeSpan MaxAloneAfter = TimeSpan.FromHours(1);

    public IReadOnlyList<MemberConfig> Members { get; init; } = [];

    /// <summary>
    /// The sync transport by name: <c>udp</c> (built in: delta sync on <c>address</c>/<c>links</c>, full sync on TCP
    /// <c>fullSyncPort</c>) or a transport plugin's name (for example <c>nats</c>), which then carries delta sync, the
    /// control channel and (when the plugin offers streams) full sync between the members' <c>transportAddress</c>es.
    /// </summary>
    public string Transport { get; init; } = TransportUdp;

    public const string TransportUdp = "udp";

    public const string ModeHighAvailability = "high-availability";
    public const string ModeLoadSharing = "load-sharing";
}

/// <summary>One member: its id, its sync address (<c>ip:port</c>, UDP) or sync links, and its priority.</summary>
public sealed record MemberConfig
{
    public int Id { get; init; }

    /// <summary>The sync address of a member with one sync link (link id 0). Give either this or <see cref="Links"/>.</summary>
    public string Address { get; init; } = "";

    /// <summary>Several sync links (the same link ids on every member); traffic takes the lowest-id healthy one.</summary>
    public IReadOnlyList<LinkConfig> Links { get; init; } = [];

    public int Priority { get; init; } = 100;

    /// <summary>TCP port of the member's full sync server, on the IP address of <see cref="Address"/>.</summary>
    public int FullSyncPort { get; init; } = FullSync.FullSyncServer.DefaultPort;

    /// <summary>The member's address on a plugin transport (<c>cluster.transport</c> other than <c>udp</c>), in that transport's syntax.</summary>
    public string? TransportAddress { get; init; }
}

/// <summary>One sync link of a member: the link's id (the same link has the same id on every member) and the member's UDP address on it.</summary>
public sealed record LinkConfig
{
    public int Id { get; init; }

    public string Address { get; init; } = "";
}

/// <summary>This node: which member it is, and its control endpoint.</summary>
public sealed record NodeSection
{
    public int MemberId { get; init; }

    public ControlConfig Control { get; init; } = new();

    /// <summary>
    /// Where the node keeps what must survive a restart (its last epoch: <c>clustersync-member{id}.epoch</c>); must exist
    /// and be writable. Relative paths are relative to the configuration file; null: the configuration file's directory.
    /// </summary>
    public string? StateDirectory { get; init; }
}

/// <summary>The HTTP control endpoint (<c>/status</c>, <c>/metrics</c>, <c>/healthz</c>), on 127.0.0.1 unless <see cref="Address"/> says otherwise.</summary>
public sealed record ControlConfig
{
    public const int DefaultPort = 9116;

    /// <summary>TCP port on <see cref="Address"/>; 0 disables the endpoint.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>
    /// The IP address the endpoint listens on (default <c>127.0.0.1</c>). Any other than a loopback address (including
    /// <c>0.0.0.0</c> and <c>::</c>) needs <see cref="TokenFile"/> and <see cref="RequireTokenForReads"/> (<see cref="ControlAddressValidator"/>).
    /// </summary>
    public string Address { get; init; } = ControlAddressValidator.DefaultAddress;

    /// <summary>HTTPS: the endpoint's certificate (PEM, the chain after it), with <see cref="CertificateKeyFile"/>; relative paths are relative to the configuration file. Null: plain HTTP.</summary>
    public string? CertificateFile { get; init; }

    /// <summary>HTTPS: the certificate's private key (PEM, unencrypted, owner-only like the token file).</summary>
    public string? CertificateKeyFile { get; init; }

    /// <summary>
    /// A file holding the bearer token (one line, owner-only like the cluster key) that every state-changing request
    /// (POST: generator pause/resume, ...) must present as <c>Authorization: Bearer TOKEN</c>; relative paths are
    /// relative to the configuration file. Without it, state-changing requests are refused (403) unless
    /// <see cref="AllowUnauthenticated"/> is set.
    /// </summary>
    public string? TokenFile { get; init; }

    /// <summary>Reads (<c>/status</c>, <c>/metrics</c>, <c>/healthz</c>, ...) need the token too (needs <see cref="TokenFile"/>).</summary>
    public bool RequireTokenForReads { get; init; }

    /// <summary>State-changing requests without a token (no <see cref="TokenFile"/>); any local process may then pause the generator. Must be explicit.</summary>
    public bool AllowUnauthenticated { get; init; }
}

/// <summary>Delta sync knobs; each maps to the <see cref="SyncEngineOptions"/> property of the same name and default.</summary>
public sealed record SyncConfig
{
    private static readonly SyncEngineOptions s_defaults = new();

    public int Mtu { get; init; } = s_defaults.Mtu;

    public int ResendBufferDatagrams { get; init; } = s_defaults.ResendBufferDatagrams;

    public int SendWindowDatagrams { get; init; } = s_defaults.SendWindowDatagrams;

    public int AckEveryDatagrams { get; init; } = s_defaults.AckEveryDatagrams;

    public TimeSpan AckInterval { get; init; } = s_defaults.AckInterval;

    public TimeSpan NackInterval { get; init; } = s_defaults.NackInterval;

    public TimeSpan RetransmitHoldoff { get; init; } = s_defaults.RetransmitHoldoff;

    public TimeSpan HeartbeatInterval { get; init; } = s_defaults.HeartbeatInterval;

    public int DeadAfterMissedHeartbeats { get; init; } = s_defaults.DeadAfterMissedHeartbeats;

    public TimeSpan MaxBatchDelay { get; init; } = s_defaults.MaxBatchDelay;

    public int TableCapacity { get; init; } = s_defaults.TableCapacity;

    public TimeSpan TombstoneTtl { get; init; } = s_defaults.TombstoneTtl;

    /// <summary>A live peer lagging longer than this turns health red (0: off).</summary>
    public TimeSpan MaxReplicationLag { get; init; } = s_defaults.MaxReplicationLag;

    /// <summary>How often the Active checks each Standby's table by range digests (0: off).</summary>
    public TimeSpan AntiEntropyInterval { get; init; } = s_defaults.AntiEntropyInterval;

    public TimeSpan AntiEntropySettle { get; init; } = s_defaults.AntiEntropySettle;

    /// <summary>UDP socket send and receive buffer, bytes.</summary>
    public int SocketBufferBytes { get; init; } = Transport.UdpDatagramChannel.DefaultSocketBuffer;

    /// <summary>How the sync threads (sender, receiver, heartbeat, control tick) are scheduled (<see cref="SchedulerConfig"/>).</summary>
    public SchedulerConfig Scheduler { get; init; } = new();

    /// <summary>The engine's options for this member (the engine's record stays the one the engine validates).</summary>
    public SyncEngineOptions ToEngineOptions(byte memberId, IReadOnlyList<byte> peerIds, bool insecure, PolicyOptions policy) => new()
    {
        MemberId = memberId,
        PeerMemberIds = peerIds,
        Mtu = Mtu,
        ResendBufferDatagrams = ResendBufferDatagrams,
        SendWindowDatagrams = SendWindowDatagrams,
        AckEveryDatagrams = AckEveryDatagrams,
        AckInterval = AckInterval,
        NackInterval = NackInterval,
        RetransmitHoldoff = RetransmitHoldoff,
        HeartbeatInterval = HeartbeatInterval,
        DeadAfterMissedHeartbeats = DeadAfterMissedHeartbeats,
        MaxBatchDelay = MaxBatchDelay,
        TableCapacity = TableCapacity,
        TombstoneTtl = TombstoneTtl,
        MaxReplicationLag = MaxReplicationLag,
        AntiEntropyInterval = AntiEntropyInterval,
        AntiEntropySettle = AntiEntropySettle,
        Insecure = insecure,
        Policy = policy,
        Scheduler = Scheduler.ToEngine(),
    };
}

/// <summary>
/// <c>sync.scheduler</c>: conntrackd's <c>Scheduler { Type FIFO; Priority N }</c> and <c>NiceValue</c> for the sync
/// threads (sender, receiver, heartbeat, control tick). <c>policy</c> <c>other</c> (default) with an optional <c>nice</c> (-20 to 19),
/// or <c>fifo</c>/<c>rr</c> with a <c>priority</c> (1 to 99). A real-time policy or a negative nice value needs Linux
/// and root or CAP_SYS_NICE; refused at load otherwise (exit 2).
/// </summary>
public sealed record SchedulerConfig
{
    public string Policy { get; init; } = "other";

    public int Priority { get; init; }

    public int Nice { get; init; }

    /// <summary>The engine's setting; an unknown policy name gives the default (the validator reports the name).</summary>
    public Engine.Scheduling.SyncThreadScheduling ToEngine()
        => Engine.Scheduling.SyncThreadScheduling.Parse(Policy) is { } policy
            ? new Engine.Scheduling.SyncThreadScheduling { Policy = policy, Priority = Priority, Nice = Nice }
            : Engine.Scheduling.SyncThreadScheduling.Default;
}

/// <summary>Where this node's connection changes come from.</summary>
public sealed record DataPlaneConfig
{
    public const string SourceGenerator = "generator";
    public const string SourceApi = "api";
    public const string SourceNone = "none";
    public const string SourceFeed = "feed";
    public const string SourcePlugin = "plugin";

    /// <summary><c>generator</c> (the built-in workload generator), <c>api</c> (an embedding application submits), <c>feed</c>, <c>plugin</c> (a data-plane plugin: <see cref="Plugin"/>) or <c>none</c> (a pure standby replica).</summary>
    public string Source { get; init; } = SourceNone;

    public GeneratorConfig Generator { get; init; } = new();

    /// <summary><c>feed</c>: TCP port on 127.0.0.1 where an external data plane (the demo) streams connection changes (<see cref="Demo.DataPlaneFeed"/>).</summary>
    public int FeedPort { get; init; }

    /// <summary><c>plugin</c>: the data-plane plugin by name (for example <c>trace-replay</c>); its source feeds the engine while this member is Active, its sink receives the replica on failover.</summary>
    public string? Plugin { get; init; }

    /// <summary><c>plugin</c>: the settings handed to the plugin's factory (default: <c>plugins.settings.NAME</c>).</summary>
    public System.Text.Json.JsonElement? Settings { get; init; }

    /// <summary><c>plugin</c>: the bound on a commit into the plugin's sink, in seconds (default 30): past it the commit is counted as timed out, reported, and the source runs anyway.</summary>
    public int CommitTimeoutSeconds { get; init; } = 30;
}

/// <summary>The built-in workload generator (<see cref="Workload.ChangeGenerator"/>), paced to a rate.</summary>
public sealed record GeneratorConfig
{
    public int Seed { get; init; } = 1;

    /// <summary>Live connections the generator keeps (its population).</summary>
    public int Connections { get; init; } = 10_000;

    public double ChangesPerSecond { get; init; } = 5_000;

    /// <summary>Stop after this many changes; 0 runs until the node stops.</summary>
    public long MaxChanges { get; init; }

    /// <summary>Share of IPv6 connections, 0 to 1.</summary>
    public double Ipv6Share { get; init; } = 0.1;

    /// <summary>Start with the generator held; <c>POST /generator/resume</c> on the control endpoint releases it.</summary>
    public bool Paused { get; init; }

    /// <summary>First IPv4 source address of generated connections (distinct per member keeps their keys apart).</summary>
    public string SourceBase { get; init; } = "10.0.0.0";
}
