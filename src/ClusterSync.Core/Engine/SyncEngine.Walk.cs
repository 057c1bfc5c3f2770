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
    internal const int WalkChunkSlots = 4096;

    /// <summary>Test hook: called by a chunked table walk between two holds of the table lock (the lock released).</summary>
    internal Action? TableWalkStepped { get; set; }

    /// <summary>
    /// The slot indexes of the table for a walk in chunks (<c>foreach (int i in WalkSlots())</c>): the enumerator holds
    /// the table lock for <see cref="WalkChunkSlots"/> slots at a time and lets go of it between chunks (so the data
    /// plane and the receiver keep running), and when the loop ends, however it ends. The loop body runs under the lock;
    /// slots may be empty (<see cref="ConnectionTable.EntryAt"/> returns a null ref). Control tick, not per packet.
    /// </summary>
    private SlotWalk WalkSlots() => new(this);

    private ref struct SlotWalk
    {
        private readonly SyncEngine _engine;
        private int _slot;
        private int _end;
        private bool _locked;

        public SlotWalk(SyncEngine engine)
        {
            _engine = engine;
            _slot = -1;
        }

        public readonly int Current => _slot;

        public readonly SlotWalk GetEnumerator() => this;

        public bool MoveNext()
        {
            if (++_slot < _end)
            {
                return true;
            }

            Dispose();
            if (_end > 0)
            {
                _engine.TableWalkStepped?.Invoke(); // between two steps, the lock released (test hook)
            }

            Monitor.Enter(_engine._tableLock, ref _locked);
            int limit = _engine._table.SlotLimit;
            if (_slot >= limit)
            {
                Dispose();
                return false;
            }

            _end = Math.Min(limit, _slot + WalkChunkSlots);
            return true;
        }

        public void Dispose()
        {
            if (_locked)
            {
                _locked = false;
                Monitor.Exit(_engine._tableLock);
            }
        }
    }

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
            TableWalkStepped?.Invoke(); // between two steps, the lock released (test hook)
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
