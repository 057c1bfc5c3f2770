using ClusterSync.Connections;

namespace ClusterSync.Engine;

/// <summary>
/// Changes waiting for the sender, coalesced per connection: a later change replaces an earlier one, so only a
/// connection's latest state is sent (a New followed by Updates stays a New). Its size is bounded by the number
/// of distinct connections, whatever the rate, which is what lets the sender wait for acknowledgements losslessly.
/// </summary>
internal sealed class PendingBatch
{
    private readonly Dictionary<ConnectionKey, int> _index;
    private ConnectionEvent[] _items;
    private int _count;

    public PendingBatch(int initialCapacity)
    {
        _index = new Dictionary<ConnectionKey, int>(initialCapacity, SeededKeyComparer.Instance);
        _items = new ConnectionEvent[initialCapacity];
    }

    public int Count => _count;

    public ReadOnlySpan<ConnectionEvent> Items => _items.AsSpan(0, _count);

    /// <summary>Adds or replaces; returns true when it replaced (coalesced) an earlier change.</summary>
    public bool Upsert(in ConnectionEvent change)
    {
        ref int slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_index, change.Key, out bool exists);
        if (exists)
        {
            ref var item = ref _items[slot];
            var kind = item.Kind == ConnectionEventKind.New && change.Kind == ConnectionEventKind.Update ? ConnectionEventKind.New : change.Kind;
            item = change;
            item.Kind = kind;
            return true;
        }

        if (_count == _items.Length)
        {
            Array.Resize(ref _items, _items.Length * 2);
        }

        slot = _count;
        _items[_count++] = change;
        return false;
    }

    public void Clear()
    {
        if (_count == 0)
        {
            return;
        }

        _index.Clear();
        _count = 0;
    }
}

/// <summary>Key comparer with a per-process random seed, so crafted tuples cannot force collisions.</summary>
internal sealed class SeededKeyComparer : IEqualityComparer<ConnectionKey>
{
    public static readonly SeededKeyComparer Instance = new();
    private readonly ulong _seed = (ulong)Random.Shared.NextInt64();

    public bool Equals(ConnectionKey x, ConnectionKey y) => x.Equals(y);

    public int GetHashCode(ConnectionKey obj) => (int)obj.Hash64(_seed);
}
