using ClusterSync.Connections;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// What a factory's sink tells its source about its own commits (echo suppression): the netlink port ids of the commit
/// sockets (events they cause carry them as nlmsg_pid) and the keys committed, for dumps (a dump says nothing about who
/// created an entry). The keys are kept until a dump that started after the last commit ended has completed — it saw
/// every committed entry, so the source tracks them all — which covers the source's first dump at takeover (it runs
/// while the commit does) and a resync dump after an overrun during the commit (the commit's own NEW events are what
/// floods the event socket then). Thread-safe.
/// </summary>
internal sealed class CommitRegistry
{
    private readonly object _sync = new();
    private readonly HashSet<ConnectionKey> _committed = [];
    private uint[] _ports = [];
    private bool _hasSource;
    private int _commitsRunning;
    private long _commitVersion;

    /// <summary>A source was created by this factory (without one, commits are not remembered).</summary>
    public void SourceCreated()
    {
        lock (_sync)
        {
            _hasSource = true;
        }
    }

    public void AddPort(uint portId)
    {
        lock (_sync)
        {
            _ports = [.. _ports, portId];
        }
    }

    /// <summary>Whether an event with this nlmsg_pid was caused by one of our commit sockets.</summary>
    public bool IsOwnPort(uint portId)
    {
        if (portId == 0)
        {
            return false;
        }

        foreach (var p in Volatile.Read(ref _ports))
        {
            if (p == portId)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The sink starts a commit.</summary>
    public void CommitStarted()
    {
        lock (_sync)
        {
            _commitsRunning++;
            _commitVersion++;
        }
    }

    /// <summary>The sink finished a commit.</summary>
    public void CommitEnded()
    {
        lock (_sync)
        {
            _commitsRunning--;
            _commitVersion++;
        }
    }

    /// <summary>Called by the sink before it sends a batch: remembers the keys (when this factory has a source).</summary>
    public void Committing(ReadOnlySpan<ConnectionKey> keys)
    {
        lock (_sync)
        {
            if (!_hasSource)
            {
                return;
            }

            foreach (var k in keys)
            {
                _committed.Add(k);
            }
        }
    }

    /// <summary>During a dump: whether an entry the source does not track yet was committed by our sink (then it is not announced).</summary>
    public bool WasCommitted(in ConnectionKey key)
    {
        lock (_sync)
        {
            return _committed.Count > 0 && _committed.Contains(key);
        }
    }

    /// <summary>A dump starts: a token for <see cref="DumpCompleted"/> (-1: a commit runs, the dump cannot cover it).</summary>
    public long DumpStarting()
    {
        lock (_sync)
        {
            return _commitsRunning > 0 ? -1 : _commitVersion;
        }
    }

    /// <summary>A dump completed: if no commit ran since it started, it saw every committed entry; the keys are dropped.</summary>
    public void DumpCompleted(long token)
    {
        lock (_sync)
        {
            if (token >= 0 && token == _commitVersion && _committed.Count > 0)
            {
                _committed.Clear();
                _committed.TrimExcess();
            }
        }
    }
}
