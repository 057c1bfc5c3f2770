using ClusterSync.Node.Plugins;

namespace ClusterSync.Node.Runtime;

/// <summary>The JSON document of <c>GET /status</c> (camelCase); also what <c>clustersync status</c> reads back.</summary>
public sealed record NodeStatus
{
    public int MemberId { get; init; }

    public ulong Epoch { get; init; }

    /// <summary><c>running</c>, <c>failed</c> or <c>stopped</c>.</summary>
    public string State { get; init; } = "";

    public string? Failure { get; init; }

    /// <summary>Set while every send of the sync transport has failed for a dead interval (health is red meanwhile).</summary>
    public string? TransportFailure { get; init; }

    /// <summary>Set while a live peer's replication lag is past <c>sync.maxReplicationLag</c> (health is red meanwhile).</summary>
    public string? ReplicationLagFailure { get; init; }

    public double UptimeSeconds { get; init; }

    public bool Encrypted { get; init; }

    public string SyncAddress { get; init; } = "";

    /// <summary>
    /// How delta-sync datagrams leave and arrive: <c>sendmmsg+gso/recvmmsg+gro</c> where the kernel has UDP GSO and GRO,
    /// <c>sendmmsg/recvmmsg</c> without them, <c>channel</c> for a plugin transport; per link id with several links.
    /// </summary>
    public string SyncTransportPath { get; init; } = "";

    /// <summary>Connections in the table (tombstones excluded).</summary>
    public int TableSize { get; init; }

    /// <summary>Table entries including tombstones of destroyed connections.</summary>
    public int TableEntries { get; init; }

    /// <summary>Connections waiting for the sender.</summary>
    public int Pending { get; init; }

    public ulong LastDataSequence { get; init; }

    public DataPlaneStatus DataPlane { get; init; } = new();

    public MembershipStatus Membership { get; init; } = new();

    /// <summary>Full sync counters (served, received, failed, entries, bytes) by snake_case name.</summary>
    public IReadOnlyDictionary<string, long> FullSync { get; init; } = new Dictionary<string, long>();

    /// <summary>The live connections of the table: count and XOR of (key, version) hashes.</summary>
    public TableDigest Digest { get; init; } = new();

    public IReadOnlyList<PeerStatusDocument> Peers { get; init; } = [];

    /// <summary>Connections at risk now (owned, live, not yet replicated).</summary>
    public ExposureDocument Exposure { get; init; } = new();

    /// <summary>Adaptive mode (null when off).</summary>
    public AdaptiveDocument? Adaptive { get; init; }

    /// <summary>Telemetry capture (null when off).</summary>
    public TelemetryDocument? Telemetry { get; init; }

    /// <summary>Every engine counter, snake_case name → value (drops as <c>drops_&lt;reason&gt;</c>).</summary>
    public IReadOnlyDictionary<string, long> Counters { get; init; } = new Dictionary<string, long>();

    /// <summary>This process's garbage-collector pauses: longest, total, collections by generation, the last long ones.</summary>
    public GcStatus Gc { get; init; } = new();

    /// <summary>The classifier in effect, its isolation counters, and every plugin found (null: no plugin catalog).</summary>
    public PluginsStatus? Plugins { get; init; }

    /// <summary>Connection templates (docs/templates.md): live, made, what they covered and saved, what failovers picked up.</summary>
    public TemplatesStatus Templates { get; init; } = new();
}

/// <summary>Connection templates of one member (docs/templates.md; the engine counters <c>template*</c> in full).</summary>
public sealed record TemplatesStatus
{
    /// <summary>Templates live on this member now (its own and its peers').</summary>
    public int Live { get; init; }

    public long Created { get; init; }

    public long Expired { get; init; }

    /// <summary>New connections a live template covered.</summary>
    public long Covered { get; init; }

    /// <summary>Covered connections that ended unannounced: the template was their only protection.</summary>
    public long CoveredEnded { get; init; }

    /// <summary>Seconds of exposure removed: Σ min(lifetime, delay) over <see cref="CoveredEnded"/>.</summary>
    public double ExposureRemovedSeconds { get; init; }

    /// <summary>Covered connections the adaptive decider left unsynchronized.</summary>
    public long Unsynced { get; init; }

    public long RecordsSent { get; init; }

    public long RecordsApplied { get; init; }

    /// <summary>Records saved: two for each connection left unsynchronized, less the template records sent (may be negative).</summary>
    public long MessagesSaved { get; init; }

    /// <summary>Templates the last promotion committed.</summary>
    public int Committed { get; init; }

    /// <summary>Unknown connections the in-process sink accepted since the last promotion because a committed template matched.</summary>
    public long PickedUpByTemplate { get; init; }
}

/// <summary>Count and XOR (16 hex digits) of a per-entry hash of key and version: two tables with equal digests hold the same connections at the same versions.</summary>
public sealed record TableDigest
{
    public long Count { get; init; }

    public string Xor { get; init; } = "0000000000000000";
}

public sealed record MembershipStatus
{
    /// <summary><c>Init</c>, <c>Syncing</c>, <c>Standby</c>, <c>Promoting</c> (taking over, its commit under way), <c>Active</c>, <c>Maintenance</c> or <c>Down</c>.</summary>
    public string State { get; init; } = "";

    /// <summary><c>high-availability</c> or <c>load-sharing</c>.</summary>
    public string Mode { get; init; } = "";

    public int Priority { get; init; }

    public bool Preemption { get; init; }

    /// <summary>Times this member became Active.</summary>
    public long Failovers { get; init; }

    /// <summary>Times this member stepped down because a higher-ranked member was also Active.</summary>
    public long SplitBrainsResolved { get; init; }

    /// <summary>Milliseconds from the previous Active's last heartbeat to this member serving, at the last promotion.</summary>
    public double LastFailoverMs { get; init; }

    /// <summary>Connections committed into the data plane at the last promotion.</summary>
    public int LastCommitted { get; init; }

    /// <summary>While Promoting: since when (Unix ms); null otherwise.</summary>
    public double? PromotingSinceUnixMs { get; init; }

    /// <summary>Promotions abandoned (a higher-ranked member was Promoting or Active, or the commit failed).</summary>
    public long PromotionsAbandoned { get; init; }

    /// <summary>Times the heartbeat thread found this process stalled (woke more than half a dead interval late).</summary>
    public long HeartbeatStalls { get; init; }

    /// <summary>What the replica sink holds now (what was committed at the last promotion).</summary>
    public TableDigest Committed { get; init; } = new();
}

public sealed record DataPlaneStatus
{
    public string Source { get; init; } = "";

    /// <summary>The generator's live connections (null unless the source is <c>generator</c>).</summary>
    public int? LiveConnections { get; init; }

    public long ChangesSubmitted { get; init; }

    /// <summary>The generator reached <c>maxChanges</c> and stopped.</summary>
    public bool Finished { get; init; }

    /// <summary>The generator is paused (<c>POST /generator/pause</c>).</summary>
    public bool Paused { get; init; }

    /// <summary>The data-plane plugin (source <c>plugin</c>), else null.</summary>
    public DataPlanePluginStatus? Plugin { get; init; }
}

public sealed record PeerStatusDocument
{
    public int MemberId { get; init; }

    public string Address { get; init; } = "";

    public ulong Epoch { get; init; }

    /// <summary>Milliseconds since the peer was last heard from; null when never.</summary>
    public long? LastHeardMs { get; init; }

    /// <summary>Smoothed round trip of our data to the peer and back as its ack, in ms (0: no sample yet).</summary>
    public double RoundTripMs { get; init; }

    /// <summary>Variation of <see cref="RoundTripMs"/> (RTTVAR), in ms.</summary>
    public double RoundTripVariationMs { get; init; }

    public bool Alive { get; init; }

    public int State { get; init; }

    /// <summary>The member state the peer's heartbeats advertise (<c>Down</c> once it missed the dead interval).</summary>
    public string MemberState { get; init; } = "";

    public int Priority { get; init; }

    public ulong ReceivedThrough { get; init; }

    public ulong AckedThrough { get; init; }

    /// <summary>Data datagrams sent to the peer and not yet acknowledged by it.</summary>
    public ulong ReplicationLagDatagrams { get; init; }

    /// <summary>Milliseconds the oldest update the peer has not acknowledged has waited (0: caught up).</summary>
    public long ReplicationLagMs { get; init; }

    /// <summary>The peer holds the send window back (false while dropped from it: stalled, or restarted and catching up).</summary>
    public bool InSendWindow { get; init; }

    /// <summary>Live and past <c>sync.maxReplicationLag</c>.</summary>
    public bool Lagging { get; init; }

    /// <summary>Each sync link toward the peer (empty with a single link).</summary>
    public IReadOnlyList<LinkStatusDocument> Links { get; init; } = [];

    /// <summary>Times the peer's traffic moved to another sync link.</summary>
    public long LinkSwitches { get; init; }
}

/// <summary>One sync link toward one peer.</summary>
public sealed record LinkStatusDocument
{
    public int Id { get; init; }

    /// <summary>The peer's address on this link.</summary>
    public string Address { get; init; } = "";

    /// <summary>Heartbeats cross it both ways within the dead interval.</summary>
    public bool Up { get; init; }

    /// <summary>Milliseconds since a heartbeat the peer sent on this link arrived on it; null when never.</summary>
    public long? LastHeardMs { get; init; }

    /// <summary>The peer's heartbeats say it hears this member on the link.</summary>
    public bool PeerHearsUs { get; init; }

    /// <summary>Data, acks and NACKs to the peer travel on this link now.</summary>
    public bool Carrying { get; init; }
}

/// <summary>What <c>/status</c> reports about plugins: the classifier in effect and every plugin found.</summary>
public sealed record PluginsStatus
{
    /// <summary>The classifier in effect (a plugin's name, or <c>port-protocol (built-in)</c> after a fallback).</summary>
    public string Classifier { get; init; } = "";

    /// <summary>The configured classifier plugin.</summary>
    public string ConfiguredClassifier { get; init; } = "";

    public long ClassifierCalls { get; init; }

    public long ClassifierExceptions { get; init; }

    public long ClassifierUnknownClasses { get; init; }

    public long ClassifierTimeouts { get; init; }

    public long Reloads { get; init; }

    public IReadOnlyList<PluginInfo> Plugins { get; init; } = [];
}
