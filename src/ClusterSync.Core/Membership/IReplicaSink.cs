using ClusterSync.Connections;
using ClusterSync.Templates;

namespace ClusterSync.Membership;

/// <summary>What <see cref="InMemoryReplicaSink.Accept"/> says of a packet's connection.</summary>
public enum ConnectionAcceptance
{
    /// <summary>No committed entry and no live template matches: the data plane drops it.</summary>
    Refused = 0,
    /// <summary>The connection is in the committed state.</summary>
    Committed = 1,
    /// <summary>Unknown, but a live template matched: its entry was created on the spot.</summary>
    PickedUpByTemplate = 2,
}

/// <summary>
/// The in-process sink: keeps what was committed, for an embedding application, the demo and tests. It takes the live
/// templates too (<see cref="ITemplateSink"/>) and answers whether a connection is acceptable (<see cref="Accept"/>).
/// </summary>
public sealed class InMemoryReplicaSink : IReplicaSink, ITemplateSink
{
    private readonly object _sync = new();
    private IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> _snapshot = [];
    private Dictionary<ConnectionKey, ConnectionEntry>? _byKey = [];
    private Dictionary<ConnectionKey, ConnectionTemplate> _templates = [];
    private long _pickedUp;
    private long _refused;

    public string Name => "in-process";

    public int Commits { get; private set; }

    /// <summary>Unknown connections accepted because a committed template matched them (each created on the spot).</summary>
    public long PickedUpByTemplate => Interlocked.Read(ref _pickedUp);

    /// <summary>Unknown connections refused: no template matched.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The templates of the last commit (expired ones included until the next commit).</summary>
    public IReadOnlyCollection<ConnectionTemplate> CommittedTemplates
    {
        get
        {
            lock (_sync)
            {
                return _templates.Values.ToList();
            }
        }
    }

    /// <inheritdoc/>
    public void CommitTemplates(IReadOnlyList<ConnectionTemplate> templates)
    {
        var byShape = new Dictionary<ConnectionKey, ConnectionTemplate>(templates.Count);
        foreach (var t in templates)
        {
            byShape[t.Key] = t;
        }

        lock (_sync)
        {
            _templates = byShape;
        }
    }

    /// <summary>
    /// Is a packet of <paramref name="key"/> acceptable at <paramref name="nowMs"/> (Unix ms)? A committed connection is;
    /// an unknown one is when a committed template of its shape is still live: its entry is created on the spot (owned
    /// by <paramref name="owner"/>, in the state <paramref name="state"/>, with the template's class and lifetime as its
    /// timeout) and counted in <see cref="PickedUpByTemplate"/>; otherwise it is refused (counted).
    /// </summary>
    public ConnectionAcceptance Accept(in ConnectionKey key, long nowMs, byte owner, ProtocolState state = ProtocolState.TcpEstablished)
    {
        lock (_sync)
        {
            var committed = ByKeyLocked();
            if (committed.ContainsKey(key))
            {
                return ConnectionAcceptance.Committed;
            }

            if (TemplateKeys.Covers(key.Protocol) && _templates.TryGetValue(TemplateKeys.ShapeOf(key), out var t) && t.IsLiveAt(nowMs))
            {
                var entry = new ConnectionEntry
                {
                    Reply = key.InverseTuple,
                    State = state,
                    TimeoutSeconds = t.LifetimeSeconds,
                    CreatedMs = nowMs,
                    UpdatedMs = nowMs,
                    ServiceClass = t.ServiceClass,
                    Owner = owner,
                    Version = 1,
                };
                committed[key] = entry;
                _pickedUp++;
                return ConnectionAcceptance.PickedUpByTemplate;
            }

            _refused++;
            return ConnectionAcceptance.Refused;
        }
    }

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
            _templates = [];
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

    /// <summary>
    /// How many connections are committed, without building the by-key view: <c>/failover</c> is polled right after a
    /// takeover, and building the 1,000,000-entry dictionary there allocated ~150 MB on the new Active while it committed
    /// into the kernel (issue 13).
    /// </summary>
    public int CommittedCount
    {
        get
        {
            lock (_sync)
            {
                return _byKey?.Count ?? _snapshot.Count;
            }
        }
    }

    /// <summary>
    /// The committed connections, from the by-key view when it is built (it holds the connections picked up by templates
    /// too), else the snapshot as committed: no copy, no dictionary. For status digests and counts.
    /// </summary>
    public IReadOnlyCollection<KeyValuePair<ConnectionKey, ConnectionEntry>> CommittedEntries
    {
        get
        {
            lock (_sync)
            {
                return _byKey is { } byKey ? byKey : _snapshot;
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
                return ByKeyLocked();
            }
        }
    }

    private Dictionary<ConnectionKey, ConnectionEntry> ByKeyLocked()
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
