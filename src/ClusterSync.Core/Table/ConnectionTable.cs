using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using ClusterSync.Connections;

namespace ClusterSync.Table;

/// <summary>
/// The connection table: a chained hash table over flat struct arrays (key 40 B + entry 76 B + link 4 B + tag 4 B per
/// slot, plus 4 B per bucket, 1.5–3 buckets per slot), so a table sized for a million connections costs about 132 bytes per entry and an
/// update in place allocates nothing. Slots never move, so a sweep or a snapshot can walk them in chunks.
/// The master of a related connection (<see cref="ConnectionEntry.Master"/>, 40 B that almost every entry would
/// leave empty) lives in a side table keyed by the entry's key; <see cref="TableEntry.HasMaster"/> says it is there.
/// Not thread-safe: the engine serialises access.
/// </summary>
/// <summary>Sees an entry the sweep is about to remove (under the engine's table lock).</summary>
internal delegate void ExpiredHandler(in ConnectionKey key, in TableEntry entry, SlotTag tag, long nowMs);

internal sealed class ConnectionTable
{
    private const int EndOfChain = -1;
    private const int FreeMarker = -2; // Next <= FreeMarker: slot is free
    private const int FreeListBase = -3; // a free slot's Next = FreeListBase - (index of the next free slot)

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct Slot
    {
        public ConnectionKey Key;
        public TableEntry Entry;
        public int Next;
        public SlotTag Tag; // 124 bytes in all
    }

    private static readonly ulong s_seed = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));

    private int[] _buckets;   // 1-based slot index, 0 = empty
    private Slot[] _slots;
    private int _mask;
    private int _used;        // high-water mark of slots ever used
    private int _freeList = -1;
    private int _freeCount;
    private Dictionary<ConnectionKey, ConnectionCounters>? _counters;
    private Dictionary<ConnectionKey, ConnectionKey>? _masters;

    public ConnectionTable(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _slots = new Slot[capacity];
        _buckets = new int[BucketsFor(capacity)];
        _mask = _buckets.Length - 1;
        HugePages.Advise(_slots);
        HugePages.Advise(_buckets);
    }

    /// <summary>
    /// Buckets for <paramref name="capacity"/> slots: a power of two of at least 1.5 buckets per slot, so a full table's
    /// chains average at most 2/3 of an entry. Every chain link beyond the first is a slot at a random place in a table of
    /// millions, a cache miss the prefetch pipeline cannot see coming; with a bucket per slot (the sizing before, load up
    /// to 1.0) a hit walked up to ~1.5 slots, now at most ~1.33. Costs 6–12 bytes per slot of capacity (4–8 before).
    /// </summary>
    private static int BucketsFor(int capacity) => (int)BitOperations.RoundUpToPowerOf2((uint)Math.Min(1L << 30, capacity + ((long)capacity >> 1)));

    /// <summary>Entries in the table, tombstones included.</summary>
    public int Count => _used - _freeCount;

    /// <summary>Slots allocated (entries the table holds before it grows).</summary>
    public int Capacity => _slots.Length;

    /// <summary>Upper bound of slot indexes in use, for chunked walks.</summary>
    public int SlotLimit => _used;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int BucketOf(in ConnectionKey key) => (int)key.Hash64(s_seed) & _mask;

    /// <summary>
    /// Starts loading the bucket of <paramref name="key"/> into the cache. A table of millions of entries misses the
    /// cache on every lookup; prefetching a batch's buckets, then its slots, overlaps those misses.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void PrefetchBucket(in ConnectionKey key)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(Unsafe.AsPointer(ref _buckets[BucketOf(key)]));
        }
    }

    /// <summary>Starts loading the first slot of <paramref name="key"/>'s chain (after <see cref="PrefetchBucket"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void PrefetchSlot(in ConnectionKey key)
    {
        if (Sse.IsSupported)
        {
            int i = _buckets[BucketOf(key)] - 1;
            if ((uint)i < (uint)_slots.Length)
            {
                // A slot is 124 bytes: it spans two (sometimes three) cache lines; fetch both ends.
                byte* p = (byte*)Unsafe.AsPointer(ref _slots[i]);
                Sse.Prefetch0(p);
                Sse.Prefetch0(p + 123);
            }
        }
    }

    /// <summary>A reference to the entry of <paramref name="key"/>, or a null reference when absent.</summary>
    public ref TableEntry Find(in ConnectionKey key)
    {
        var slots = _slots;
        int i = _buckets[BucketOf(key)] - 1;
        while ((uint)i < (uint)slots.Length)
        {
            ref Slot s = ref slots[i];
            if (s.Key.Equals(key))
            {
                return ref s.Entry;
            }

            i = s.Next;
        }

        return ref Unsafe.NullRef<TableEntry>();
    }

    public bool Contains(in ConnectionKey key) => !Unsafe.IsNullRef(ref Find(key));

    /// <summary>A reference to the entry of <paramref name="key"/>, added zeroed when absent.</summary>
    public ref TableEntry GetOrAdd(in ConnectionKey key, out bool added) => ref GetOrAdd(key, out added, out _);

    /// <summary>As <see cref="GetOrAdd(in ConnectionKey, out bool)"/>, also giving the slot (stable until the entry is removed).</summary>
    public ref TableEntry GetOrAdd(in ConnectionKey key, out bool added, out int slot)
    {
        ref int bucket = ref _buckets[BucketOf(key)];
        var slots = _slots;
        int i = bucket - 1;
        while ((uint)i < (uint)slots.Length)
        {
            ref Slot s = ref slots[i];
            if (s.Key.Equals(key))
            {
                added = false;
                slot = i;
                return ref s.Entry;
            }

            i = s.Next;
        }

        int index;
        if (_freeCount > 0)
        {
            index = _freeList;
            _freeList = FreeListBase - slots[index].Next;
            _freeCount--;
        }
        else
        {
            if (_used == slots.Length)
            {
                Grow();
                slots = _slots;
                bucket = ref _buckets[BucketOf(key)];
            }

            index = _used++;
        }

        ref Slot n = ref slots[index];
        n.Key = key;
        n.Entry = default;
        n.Tag = default;
        n.Next = bucket - 1;
        bucket = index + 1;
        added = true;
        slot = index;
        return ref n.Entry;
    }

    public bool Remove(in ConnectionKey key)
    {
        ref int bucket = ref _buckets[BucketOf(key)];
        var slots = _slots;
        int last = -1;
        int i = bucket - 1;
        while ((uint)i < (uint)slots.Length)
        {
            ref Slot s = ref slots[i];
            if (s.Key.Equals(key))
            {
                if (last < 0)
                {
                    bucket = s.Next + 1;
                }
                else
                {
                    slots[last].Next = s.Next;
                }

                if (s.Entry.HasMaster)
                {
                    _masters?.Remove(key);
                }

                Free(i);
                _counters?.Remove(key);
                return true;
            }

            last = i;
            i = s.Next;
        }

        return false;
    }

    private void Free(int index)
    {
        ref Slot s = ref _slots[index];
        s.Key = default;
        s.Entry = default;
        s.Next = FreeListBase - _freeList;
        _freeList = index;
        _freeCount++;
    }

    /// <summary>The engine-local tag of slot <paramref name="index"/> (a slot in use).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref SlotTag TagAt(int index) => ref _slots[index].Tag;

    /// <summary>The entry in slot <paramref name="index"/>, or a null reference when the slot is free.</summary>
    public ref TableEntry EntryAt(int index, out ConnectionKey key)
    {
        ref Slot s = ref _slots[index];
        if (s.Next <= FreeMarker || index >= _used)
        {
            key = default;
            return ref Unsafe.NullRef<TableEntry>();
        }

        key = s.Key;
        return ref s.Entry;
    }

    /// <summary>Reads slot <paramref name="index"/>; false when the slot is free.</summary>
    public bool TryGetAt(int index, out ConnectionKey key, out ConnectionEntry entry)
    {
        ref Slot s = ref _slots[index];
        if (s.Next <= FreeMarker || index >= _used)
        {
            key = default;
            entry = default;
            return false;
        }

        key = s.Key;
        entry = Read(s.Key, s.Entry);
        return true;
    }

    /// <summary>
    /// Sets (or, with a default key, clears) the master of the entry <paramref name="e"/> of <paramref name="key"/>
    /// (a reference this table gave out). Touches the side table only when an entry has or gets a master.
    /// </summary>
    public void SetMaster(in ConnectionKey key, ref TableEntry e, in ConnectionKey master)
    {
        if (master.Family != 0)
        {
            (_masters ??= new Dictionary<ConnectionKey, ConnectionKey>())[key] = master;
            e.HasMaster = true;
        }
        else if (e.HasMaster)
        {
            _masters?.Remove(key);
            e.HasMaster = false;
        }
    }

    /// <summary>The master of <paramref name="key"/>'s entry <paramref name="e"/>, or default.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ConnectionKey MasterOf(in ConnectionKey key, in TableEntry e)
        => e.HasMaster && _masters is not null && _masters.TryGetValue(key, out var m) ? m : default;

    /// <summary>The stored entry <paramref name="e"/> of <paramref name="key"/> as the contract carries it (with its master).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ConnectionEntry Read(in ConnectionKey key, in TableEntry e) => e.ToEntry(MasterOf(key, e));

    /// <summary>Entries holding a master now (the side table's size).</summary>
    public int MasterCount => _masters?.Count ?? 0;

    /// <summary>
    /// Removes entries (and tombstones) whose expiry is at or before <paramref name="nowMs"/>, walking at most
    /// <paramref name="maxSlots"/> slots from <paramref name="cursor"/> (which wraps). Returns how many were removed.
    /// </summary>
    public int SweepExpired(long nowMs, ref int cursor, int maxSlots, ExpiredHandler? onExpired = null)
    {
        int removed = 0;
        int limit = _used;
        if (limit == 0)
        {
            cursor = 0;
            return 0;
        }

        for (int n = 0; n < maxSlots && n < limit; n++)
        {
            if (cursor >= limit)
            {
                cursor = 0;
            }

            ref Slot s = ref _slots[cursor];
            if (s.Next > FreeMarker && s.Entry.ExpiresAtMs <= nowMs)
            {
                var key = s.Key;
                onExpired?.Invoke(key, s.Entry, s.Tag, nowMs);
                Remove(key);
                removed++;
            }

            cursor++;
        }

        return removed;
    }

    public void SetCounters(in ConnectionKey key, in ConnectionCounters counters)
        => (_counters ??= new Dictionary<ConnectionKey, ConnectionCounters>())[key] = counters;

    public bool TryGetCounters(in ConnectionKey key, out ConnectionCounters counters)
    {
        if (_counters is not null && _counters.TryGetValue(key, out counters))
        {
            return true;
        }

        counters = default;
        return false;
    }

    public void ClearCounters(in ConnectionKey key) => _counters?.Remove(key);

    /// <summary>Live entries owned by <paramref name="owner"/> and not announced, with their summed age (walks the table).</summary>
    public int CountUnannounced(byte owner, long nowMs, out long ageMs)
    {
        int n = 0;
        ageMs = 0;
        for (int i = 0; i < _used; i++)
        {
            ref Slot s = ref _slots[i];
            if (s.Next > FreeMarker && s.Entry.Owner == owner
                && (s.Entry.Status & (ConnectionStatus.Tombstone | ConnectionStatus.Announced)) == 0)
            {
                n++;
                ageMs += Math.Max(0, nowMs - s.Entry.CreatedMs);
            }
        }

        return n;
    }

    /// <summary>Entries that are not tombstones (walks the table: for status, not the hot path).</summary>
    public int CountLive()
    {
        int live = 0;
        for (int i = 0; i < _used; i++)
        {
            ref Slot s = ref _slots[i];
            if (s.Next > FreeMarker && (s.Entry.Status & ConnectionStatus.Tombstone) == 0)
            {
                live++;
            }
        }

        return live;
    }

    /// <summary>Copies every entry out (allocates; for snapshots and tests).</summary>
    public List<KeyValuePair<ConnectionKey, ConnectionEntry>> ToList(bool includeTombstones = false)
    {
        var list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(Count);
        for (int i = 0; i < _used; i++)
        {
            ref Slot s = ref _slots[i];
            if (s.Next > FreeMarker && (includeTombstones || (s.Entry.Status & ConnectionStatus.Tombstone) == 0))
            {
                list.Add(new(s.Key, Read(s.Key, s.Entry)));
            }
        }

        return list;
    }

    private void Grow()
    {
        int newSize = checked(_slots.Length * 2);
        var slots = new Slot[newSize];
        HugePages.Advise(slots);
        Array.Copy(_slots, slots, _used);
        var buckets = new int[BucketsFor(newSize)];
        HugePages.Advise(buckets);
        int mask = buckets.Length - 1;
        for (int i = 0; i < _used; i++)
        {
            ref Slot s = ref slots[i];
            if (s.Next <= FreeMarker)
            {
                continue;
            }

            ref int b = ref buckets[(int)s.Key.Hash64(s_seed) & mask];
            s.Next = b - 1;
            b = i + 1;
        }

        _slots = slots;
        _buckets = buckets;
        _mask = mask;
    }
}
