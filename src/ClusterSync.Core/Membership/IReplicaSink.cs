using ClusterSync.Connections;

namespace ClusterSync.Membership;

/// <summary>The in-process sink: keeps what was committed, for an embedding application, the demo and tests.</summary>
public sealed class InMemoryReplicaSink : IReplicaSink
{
    private readonly object _sync = new();
    private IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> _snapshot = [];
    private Dictionary<ConnectionKey, ConnectionEntry>? _byKey = [];

    public string Name => "in-process";

    public int Commits { get; private set; }

    /// <summary>
    /// Takes over <paramref name="replica"/> as the committed table. The caller hands over a snapshot it no longer
    /// changes, so committing is O(1): a takeover's time to serve does not grow with the table (the by-key view
    /// <see cref="Committed"/> is built on first use, off the failover path). A sink that installs entries into a
    /// real data plane (the kernel) pays its inserts here instead.
    /// </summary>
    public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        lock (_sync)
        {
            _snapshot = replica;
            _byKey = null;
            Commits++;
        }
    }

    /// <summary>The committed connections as committed (no copy).</summary>
    public IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> CommittedSnapshot
    {
        get
        {
            lock (_sync)
            {
                return _snapshot;
            }
        }
    }

    /// <summary>The committed connections by key (built on first use after a commit).</summary>
    public IReadOnlyDictionary<ConnectionKey, ConnectionEntry> Committed
    {
        get
        {
            lock (_sync)
            {
                if (_byKey is null)
                {
                    var table = new Dictionary<ConnectionKey, ConnectionEntry>(_snapshot.Count);
                    foreach (var (k, e) in _snapshot)
                    {
                        table[k] = e;
                    }

                    _byKey = table;
                }

                return _byKey;
            }
        }
    }
}
