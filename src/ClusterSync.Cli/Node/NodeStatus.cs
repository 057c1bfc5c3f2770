namespace ClusterSync.Cli.Node;

/// <summary>The JSON document of <c>GET /status</c> (camelCase); also what <c>clustersync status</c> reads back.</summary>
internal sealed record NodeStatus
{
    public int MemberId { get; init; }

    public ulong Epoch { get; init; }

    /// <summary><c>running</c>, <c>failed</c> or <c>stopped</c>.</summary>
    public string State { get; init; } = "";

    public string? Failure { get; init; }

    public double UptimeSeconds { get; init; }

    public bool Encrypted { get; init; }

    public string SyncAddress { get; init; } = "";

    /// <summary>Connections in the table (tombstones excluded).</summary>
    public int TableSize { get; init; }

    /// <summary>Table entries including tombstones of destroyed connections.</summary>
    public int TableEntries { get; init; }

    /// <summary>Connections waiting for the sender.</summary>
    public int Pending { get; init; }

    public ulong LastDataSequence { get; init; }

    public DataPlaneStatus DataPlane { get; init; } = new();

    public IReadOnlyList<PeerStatusDocument> Peers { get; init; } = [];

    /// <summary>Every engine counter, snake_case name → value (drops as <c>drops_&lt;reason&gt;</c>).</summary>
    public IReadOnlyDictionary<string, long> Counters { get; init; } = new Dictionary<string, long>();
}

internal sealed record DataPlaneStatus
{
    public string Source { get; init; } = "";

    /// <summary>The generator's live connections (null unless the source is <c>generator</c>).</summary>
    public int? LiveConnections { get; init; }

    public long ChangesSubmitted { get; init; }

    /// <summary>The generator reached <c>maxChanges</c> and stopped.</summary>
    public bool Finished { get; init; }
}

internal sealed record PeerStatusDocument
{
    public int MemberId { get; init; }

    public string Address { get; init; } = "";

    public ulong Epoch { get; init; }

    /// <summary>Milliseconds since the peer was last heard from; null when never.</summary>
    public long? LastHeardMs { get; init; }

    public bool Alive { get; init; }

    public int State { get; init; }

    public int Priority { get; init; }

    public ulong ReceivedThrough { get; init; }

    public ulong AckedThrough { get; init; }
}
