using ClusterSync.Connections;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// What a factory's sink tells its source about its own commits (echo suppression): the netlink port ids of the commit
/// sockets (events they cause carry them as nlmsg_pid) and, until the source's first dump, the keys committed (a dump
/// says nothing about who created an entry). Thread-safe.
/// </summary>
internal sealed class CommitRegistry
{
    private readonly object _sync = new();
    private readonly HashSet<ConnectionKey> _committedBeforeDump = [];
    private uint[] _ports = [];
    private bool _sourceDumped;
    private bool _hasSource;

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

    /// <summary>Called by the sink before it sends a batch: remembers the keys while the source has not dumped yet.</summary>
    public void Committing(ReadOnlySpan<ConnectionKey> keys)
    {
        lock (_sync)
        {
            if (_sourceDumped || !_hasSource)
            {
                return;
            }

            foreach (var k in keys)
            {
                _committedBeforeDump.Add(k);
            }
        }
    }

    /// <summary>During the source's first dump: whether the entry was committed by our sink (then it is not announced).</summary>
    public bool WasCommitted(in ConnectionKey key)
    {
        lock (_sync)
        {
            return _committedBeforeDump.Count > 0 && _committedBeforeDump.Contains(key);
        }
    }

    /// <summary>The source finished its first dump: from now on echo suppression goes by port id alone.</summary>
    public void SourceDumped()
    {
        lock (_sync)
        {
            _sourceDumped = true;
            _committedBeforeDump.Clear();
            _committedBeforeDump.TrimExcess();
        }
    }
}
