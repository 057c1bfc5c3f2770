namespace ClusterSync.Core.Tests.Table;

public class ConnectionTableTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.IPv4((uint)(0x0A00_0000 + i), 0x0B00_0001, (ushort)(1024 + (i % 50000)), 443, 6);

    private static void Add(ConnectionTable t, int i, long updatedMs = 1_000, uint timeout = 60)
    {
        ref var e = ref t.GetOrAdd(Key(i), out bool added);
        Assert.True(added);
        e.Version = (ulong)i + 1;
        e.UpdatedMs = updatedMs;
        e.TimeoutSeconds = timeout;
        e.Owner = 1;
    }

    private static bool TryFind(ConnectionTable t, int i, out ulong version)
    {
        ref var e = ref t.Find(Key(i));
        if (Unsafe.IsNullRef(ref e))
        {
            version = 0;
            return false;
        }

        version = e.Version;
        return true;
    }

    [Fact]
    public void GetOrAdd_NewKey_AddsZeroedEntryFindableAfterwards()
    {
        var t = new ConnectionTable(16);

        ref var e = ref t.GetOrAdd(Key(1), out bool added);

        Assert.True(added);
        Assert.Equal(0UL, e.Version);
        e.Version = 7;
        Assert.True(t.Contains(Key(1)));
        Assert.True(TryFind(t, 1, out ulong v));
        Assert.Equal(7UL, v);
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void GetOrAdd_ExistingKey_ReturnsSameEntry()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);

        ref var e = ref t.GetOrAdd(Key(1), out bool added);

        Assert.False(added);
        Assert.Equal(2UL, e.Version);
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void Find_Absent_ReturnsNullRef()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);

        Assert.True(Unsafe.IsNullRef(ref t.Find(Key(2))));
        Assert.False(t.Contains(Key(2)));
    }

    [Fact]
    public void Remove_Present_RemovesOnlyThatKey()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        Add(t, 2);

        Assert.True(t.Remove(Key(1)));

        Assert.False(t.Contains(Key(1)));
        Assert.True(t.Contains(Key(2)));
        Assert.Equal(1, t.Count);
        Assert.False(t.Remove(Key(1)));
        Assert.False(t.Remove(Key(3)));
    }

    [Fact]
    public void GetOrAdd_TenThousandIntoCapacity16_AllFindableAfterGrowth()
    {
        var t = new ConnectionTable(16);
        const int n = 10_000;
        for (int i = 0; i < n; i++)
        {
            Add(t, i);
        }

        Assert.Equal(n, t.Count);
        Assert.True(t.Capacity >= n);
        for (int i = 0; i < n; i++)
        {
            Assert.True(TryFind(t, i, out ulong v), $"key {i} lost");
            Assert.Equal((ulong)i + 1, v);
        }

        Assert.False(t.Contains(Key(n)));
    }

    [Theory]
    [InlineData(0)] // forward
    [InlineData(1)] // reverse
    [InlineData(2)] // shuffled
    public void Remove_ManyEntriesInsideChains_KeepsEveryOtherEntryFindable(int order)
    {
        // 3000 keys in 4096 buckets: plenty of chains, so heads, middles and tails get unlinked.
        var t = new ConnectionTable(4096);
        const int n = 3000;
        for (int i = 0; i < n; i++)
        {
            Add(t, i);
        }

        var victims = Enumerable.Range(0, n).Where(i => i % 3 != 0).ToList();
        if (order == 1)
        {
            victims.Reverse();
        }
        else if (order == 2)
        {
            victims = victims.OrderBy(_ => Random.Shared.Next()).ToList();
        }

        foreach (int i in victims)
        {
            Assert.True(t.Remove(Key(i)));
        }

        Assert.Equal(n - victims.Count, t.Count);
        for (int i = 0; i < n; i++)
        {
            bool found = TryFind(t, i, out ulong v);
            Assert.Equal(i % 3 == 0, found);
            if (found)
            {
                Assert.Equal((ulong)i + 1, v);
            }
        }
    }

    [Fact]
    public void GetOrAdd_AfterRemove_ReusesFreeSlots()
    {
        var t = new ConnectionTable(16);
        for (int i = 0; i < 16; i++)
        {
            Add(t, i);
        }

        Assert.True(t.Remove(Key(3)));
        Assert.True(t.Remove(Key(9)));
        Assert.True(t.Remove(Key(12)));
        Add(t, 100);
        Add(t, 101);
        Add(t, 102);

        Assert.Equal(16, t.Capacity); // no growth
        Assert.Equal(16, t.SlotLimit);
        Assert.Equal(16, t.Count);
        foreach (int i in new[] { 0, 1, 2, 4, 15, 100, 101, 102 })
        {
            Assert.True(t.Contains(Key(i)));
        }

        Assert.False(t.Contains(Key(3)));

        Add(t, 103); // now it must grow
        Assert.Equal(17, t.Count);
        Assert.True(t.Capacity > 16);
        Assert.True(t.Contains(Key(103)));
    }

    [Fact]
    public void GetOrAdd_ReAddRemovedKey_StartsZeroed()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        t.Remove(Key(1));

        ref var e = ref t.GetOrAdd(Key(1), out bool added);

        Assert.True(added);
        Assert.Equal(0UL, e.Version);
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void TryGetAt_FreeSlot_ReturnsFalse()
    {
        var t = new ConnectionTable(16);
        Add(t, 0);
        Add(t, 1);
        Add(t, 2);
        t.Remove(Key(1));

        int live = 0;
        int free = 0;
        var seen = new List<ConnectionKey>();
        for (int i = 0; i < t.SlotLimit; i++)
        {
            if (t.TryGetAt(i, out var key, out var entry))
            {
                live++;
                seen.Add(key);
                Assert.NotEqual(0UL, entry.Version);
            }
            else
            {
                free++;
                Assert.Equal(default, key);
            }
        }

        Assert.Equal(2, live);
        Assert.Equal(1, free);
        Assert.Contains(Key(0), seen);
        Assert.Contains(Key(2), seen);
    }

    [Fact]
    public void TryGetAt_SeveralFreedSlots_AllReportFree()
    {
        var t = new ConnectionTable(16);
        for (int i = 0; i < 8; i++)
        {
            Add(t, i);
        }

        for (int i = 0; i < 8; i++)
        {
            t.Remove(Key(i));
        }

        for (int i = 0; i < t.SlotLimit; i++)
        {
            Assert.False(t.TryGetAt(i, out _, out _));
        }

        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void SweepExpired_OneCall_RemovesOnlyExpiredEntries()
    {
        var t = new ConnectionTable(64);
        for (int i = 0; i < 40; i++)
        {
            // even: expires at 1000 + 10 000 = 11 000; odd: at 1000 + 60 000.
            Add(t, i, updatedMs: 1_000, timeout: i % 2 == 0 ? 10u : 60u);
        }

        int cursor = 0;
        int removed = t.SweepExpired(11_000, ref cursor, 1000);

        Assert.Equal(20, removed);
        Assert.Equal(20, t.Count);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(i % 2 == 1, t.Contains(Key(i)));
        }
    }

    [Fact]
    public void SweepExpired_NothingDue_RemovesNothing()
    {
        var t = new ConnectionTable(64);
        for (int i = 0; i < 10; i++)
        {
            Add(t, i, updatedMs: 1_000, timeout: 10);
        }

        int cursor = 0;
        Assert.Equal(0, t.SweepExpired(10_999, ref cursor, 1000));
        Assert.Equal(10, t.Count);
    }

    [Fact]
    public void SweepExpired_ChunkedWalk_CoversWholeTableAcrossCalls()
    {
        var t = new ConnectionTable(16);
        const int n = 100;
        for (int i = 0; i < n; i++)
        {
            Add(t, i, updatedMs: 1_000, timeout: i % 4 == 0 ? 60u : 1u);
        }

        int cursor = 0;
        var perCall = new List<int>();
        for (int call = 0; call < 10; call++)
        {
            int before = cursor;
            perCall.Add(t.SweepExpired(5_000, ref cursor, 10));
            Assert.Equal(before + 10, cursor);
        }

        Assert.All(perCall, r => Assert.True(r is >= 7 and <= 8)); // each chunk of 10 slots holds 7 or 8 expired
        Assert.Equal(75, perCall.Sum());
        Assert.Equal(25, t.Count);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(i % 4 == 0, t.Contains(Key(i)));
        }

        // A further full pass finds nothing more.
        Assert.Equal(0, t.SweepExpired(5_000, ref cursor, n));
    }

    [Fact]
    public void SweepExpired_CursorPastLimit_Wraps()
    {
        var t = new ConnectionTable(16);
        for (int i = 0; i < 5; i++)
        {
            Add(t, i, updatedMs: 0, timeout: 1);
        }

        int cursor = 3;
        int removed = t.SweepExpired(10_000, ref cursor, 5);

        Assert.Equal(5, removed);
        Assert.Equal(0, t.Count);
        Assert.Equal(3, cursor);
    }

    [Fact]
    public void SweepExpired_EmptyTable_ResetsCursorAndReturnsZero()
    {
        var t = new ConnectionTable(16);
        int cursor = 7;

        Assert.Equal(0, t.SweepExpired(long.MaxValue, ref cursor, 100));
        Assert.Equal(0, cursor);
    }

    [Fact]
    public void SweepExpired_RemovesTombstones()
    {
        var t = new ConnectionTable(16);
        Add(t, 1, updatedMs: 0, timeout: 30);
        t.Find(Key(1)).Status = ConnectionStatus.Tombstone;

        int cursor = 0;
        Assert.Equal(0, t.SweepExpired(29_999, ref cursor, 16));
        Assert.Equal(1, t.SweepExpired(30_000, ref cursor, 16));
        Assert.False(t.Contains(Key(1)));
    }

    [Fact]
    public void Counters_SetGet_RoundTrip()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        var c = new ConnectionCounters(1, 2, 3, 4);

        Assert.False(t.TryGetCounters(Key(1), out _));
        t.SetCounters(Key(1), c);
        Assert.True(t.TryGetCounters(Key(1), out var read));
        Assert.Equal(c, read);

        t.SetCounters(Key(1), new ConnectionCounters(5, 6, 7, 8));
        Assert.True(t.TryGetCounters(Key(1), out read));
        Assert.Equal(new ConnectionCounters(5, 6, 7, 8), read);
    }

    [Fact]
    public void Remove_WithCounters_ClearsCounters()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        Add(t, 2);
        t.SetCounters(Key(1), new ConnectionCounters(1, 2, 3, 4));
        t.SetCounters(Key(2), new ConnectionCounters(9, 9, 9, 9));

        t.Remove(Key(1));

        Assert.False(t.TryGetCounters(Key(1), out var none));
        Assert.Equal(default, none);
        Assert.True(t.TryGetCounters(Key(2), out _));

        // Re-added key starts without counters.
        Add(t, 1);
        Assert.False(t.TryGetCounters(Key(1), out _));
    }

    [Fact]
    public void SweepExpired_WithCounters_ClearsCounters()
    {
        var t = new ConnectionTable(16);
        Add(t, 1, updatedMs: 0, timeout: 1);
        t.SetCounters(Key(1), new ConnectionCounters(1, 2, 3, 4));

        int cursor = 0;
        t.SweepExpired(5_000, ref cursor, 16);

        Assert.False(t.TryGetCounters(Key(1), out _));
    }

    [Fact]
    public void ClearCounters_Present_Clears()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        t.SetCounters(Key(1), new ConnectionCounters(1, 2, 3, 4));

        t.ClearCounters(Key(1));

        Assert.False(t.TryGetCounters(Key(1), out _));
        Assert.True(t.Contains(Key(1)));
    }

    [Fact]
    public void ToList_Tombstones_ExcludedUnlessAsked()
    {
        var t = new ConnectionTable(16);
        Add(t, 1);
        Add(t, 2);
        t.Find(Key(2)).Status = ConnectionStatus.Tombstone;

        Assert.Equal([Key(1)], t.ToList().Select(kv => kv.Key));
        Assert.Equal(2, t.ToList(includeTombstones: true).Count);
        Assert.Equal(2, t.Count);
    }

    [Fact]
    public void Constructor_CapacityBelowOne_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConnectionTable(0));
    }
}
