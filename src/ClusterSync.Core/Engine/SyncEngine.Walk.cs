using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Table;

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
        while ((cursor = VisitLive(ref visitor, cursor, WalkChunkSlots)) >= 0)
        {
        }
    }

    /// <summary>
    /// One step of a resumable walk: shows the live connections in up to <paramref name="maxSlots"/> table slots from
    /// <paramref name="cursor"/> (0 to begin) under one hold of the table lock, and returns the cursor to continue
    /// from, or -1 when the walk is complete. Between steps the caller may do slow work (write to a socket) without
    /// holding anything: a streamed report of millions of entries needs memory for one step only. Same consistency as
    /// <see cref="VisitLive{TVisitor}(ref TVisitor)"/>.
    /// </summary>
    public int VisitLive<TVisitor>(ref TVisitor visitor, int cursor, int maxSlots)
        where TVisitor : struct, ILiveConnectionVisitor
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cursor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSlots);
        lock (_tableLock)
        {
            int limit = _table.SlotLimit;
            if (cursor >= limit)
            {
                return -1;
            }

            int end = (int)Math.Min(limit, (long)cursor + maxSlots);
            for (int i = cursor; i < end; i++)
            {
                ref var e = ref _table.EntryAt(i, out var key);
                if (!Unsafe.IsNullRef(ref e) && (e.Status & ConnectionStatus.Tombstone) == 0)
                {
                    visitor.Visit(key, _table.Read(key, e));
                }
            }

            return end;
        }
    }
}
