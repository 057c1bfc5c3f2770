using ClusterSync.Connections;
using ClusterSync.DataPlane;

namespace ClusterSync.Plugins;

/// <summary>Keeps the replica committed on failover: the connections the replayed data plane would carry from then on.</summary>
public sealed class TraceReplaySink : IReplicaSink, IDataPlaneStatus
{
    private readonly object _sync = new();
    private Dictionary<ConnectionKey, ConnectionEntry> _connections = [];
    private long _commits;

    /// <inheritdoc/>
    public string Name => "trace-replay";

    /// <inheritdoc/>
    public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        var table = new Dictionary<ConnectionKey, ConnectionEntry>(replica.Count);
        foreach (var (key, entry) in replica)
        {
            table[key] = entry;
        }

        lock (_sync)
        {
            _connections = table;
            _commits++;
        }
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, long> GetCounters()
    {
        lock (_sync)
        {
            return new Dictionary<string, long> { ["commits"] = _commits, ["committed_connections"] = _connections.Count };
        }
    }
}
