using System.Runtime.CompilerServices;
using ClusterSync.Connections;

namespace ClusterSync.Engine;

/// <summary>Sees the live connections of a table walk, one at a time (a struct, so the walk allocates nothing).</summary>
public interface ILiveConnectionVisitor
{
    void Visit(in ConnectionKey key, in ConnectionEntry entry);
}

public sealed partial class SyncEngine
{
    private const int WalkChunkSlots = 4096;

    /// <summary>
    /// Shows every live connection (tombstones skipped) to <paramref name="visitor"/>, holding the table lock for
    /// 4,096 slots at a time so the data plane and the receiver keep running during a walk of millions of entries.
    /// Not a point-in-time snapshot: under churn an entry may be seen before or after a change. On a quiet table it
    /// is exact. For status and reports, not per packet.
    /// </summary>
    public void VisitLive<TVisitor>(ref TVisitor visitor)
        where TVisitor : struct, ILiveConnectionVisitor
    {
        int cursor = 0;
        while (true)
        {
            lock (_tableLock)
            {
                int limit = _table.SlotLimit;
                if (cursor >= limit)
                {
                    return;
                }

                int end = Math.Min(limit, cursor + WalkChunkSlots);
                for (int i = cursor; i < end; i++)
                {
                    ref var e = ref _table.EntryAt(i, out var key);
                    if (!Unsafe.IsNullRef(ref e) && (e.Status & ConnectionStatus.Tombstone) == 0)
                    {
                        visitor.Visit(key, e);
                    }
                }

                cursor = end;
            }
        }
    }
}
