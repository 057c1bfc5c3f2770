using ClusterSync.Connections;

namespace ClusterSync.Membership;

/// <summary>The in-process sink: keeps what was committed, for an embedding application, the demo and tests.</summary>
internal sealed class InMemoryReplicaSink : IReplicaSink
{
    private readonly object _sync = new();
    private Dictionary<ConnectionKey, ConnectionEntry> _committed = [];

    public string Name => "in-process";

    public int Commits { get; private set; }

    public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        var table = new Dictionary<ConnectionKey, ConnectionEntry>(replica.Count);
        foreach (var (k, e) in replica)
        {
            table[k] = e;
        }

        lock (_sync)
        {
            _committed = table;
            Commits++;
        }
    }

    public IReadOnlyDictionary<ConnectionKey, ConnectionEntry> Committed
    {
        get
        {
            lock (_sync)
            {
                return _committed;
            }
        }
    }
}
