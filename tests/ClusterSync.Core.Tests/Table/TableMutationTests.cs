namespace ClusterSync.Core.Tests.Table;

/// <summary>
/// Tests written against the mutation-testing survivors of ConnectionTable (bench/mutation.sh table): removal behind a
/// reused slot 0, the slot accessors at the free-list end and at the high-water mark, one sweep pass, counters of
/// several keys, and the counting walks.
/// </summary>
public sealed class TableMutationTests
{
    private static ConnectionKey Key(int round, int i) => ConnectionKey.IPv4((uint)(0x0A10_0000 + (round << 8) + i), 0x0B00_0001, (ushort)(2000 + i), 443, 6);

    private static void Add(ConnectionTable t, in ConnectionKey key, byte owner = 1, ConnectionStatus status = ConnectionStatus.None, long createdMs = 1_000)
    {
        ref var e = ref t.GetOrAdd(key, out bool added);
        Assert.True(added);
        e.Version = 1;
        e.Owner = owner;
        e.Status = status;
        e.CreatedMs = createdMs;
        e.UpdatedMs = createdMs;
        e.TimeoutSeconds = 60;
    }

    /// <summary>
    /// Slot 0 freed and reused by a new key puts slot 0 at the head of that key's chain, in front of older keys of the
    /// same bucket: removing one of those must unlink it from slot 0, not from the bucket. (The buckets follow a random
    /// per-process seed, so 100 rounds make sure some round has such a chain.)
    /// </summary>
    [Fact]
    public void Remove_KeysBehindAReusedSlotZero_EveryOtherKeyStaysFindable()
    {
        for (int round = 0; round < 100; round++)
        {
            var t = new ConnectionTable(16);
            for (int i = 0; i < 16; i++)
            {
                Add(t, Key(round, i));
            }

            Assert.True(t.Remove(Key(round, 0))); // slot 0 is free
            var fresh = Key(round, 100);
            Add(t, fresh); // reuses slot 0, at the head of its chain
            Assert.True(t.TryGetAt(0, out var atZero, out _));
            Assert.Equal(fresh, atZero);

            for (int i = 1; i < 16; i++)
            {
                Assert.True(t.Remove(Key(round, i)));
                Assert.True(t.Contains(fresh), $"round {round}: the key in slot 0 was lost removing key {i}");
                for (int j = i + 1; j < 16; j++)
                {
                    Assert.True(t.Contains(Key(round, j)));
                }
            }

            Assert.Equal(1, t.Count);
        }
    }

    [Fact]
    public void EntryAt_FreedSlotAndSlotAtTheHighWaterMark_NullWithDefaultKey()
    {
        var t = new ConnectionTable(16);
        Add(t, Key(0, 0));
        Add(t, Key(0, 1));
        Add(t, Key(0, 2));
        t.Remove(Key(0, 1)); // the only free slot: the end of the free list

        Assert.True(Unsafe.IsNullRef(ref t.EntryAt(1, out var freed)));
        Assert.Equal(default, freed);
        Assert.Equal(3, t.SlotLimit);
        Assert.True(Unsafe.IsNullRef(ref t.EntryAt(3, out var unused)));
        Assert.Equal(default, unused);
        Assert.False(t.TryGetAt(3, out _, out _));
        ref var live = ref t.EntryAt(2, out var key2);
        Assert.False(Unsafe.IsNullRef(ref live));
        Assert.Equal(Key(0, 2), key2);
    }

    [Fact]
    public void SweepExpired_MoreSlotsThanTheTable_OnePassEndingWhereItStarted()
    {
        var t = new ConnectionTable(16);
        for (int i = 0; i < 5; i++)
        {
            Add(t, Key(0, i));
        }

        int cursor = 0;
        var seen = new List<ConnectionKey>();
        int removed = t.SweepExpired(long.MaxValue, ref cursor, 100, (in ConnectionKey k, in TableEntry _, SlotTag _, long _) => seen.Add(k));

        Assert.Equal(5, removed);
        Assert.Equal(5, seen.Count);
        Assert.Equal(5, cursor); // wraps to slot 0 at the next call
    }

    [Fact]
    public void SetCounters_SeveralKeys_EachKept()
    {
        var t = new ConnectionTable(16);
        Add(t, Key(0, 0));
        Add(t, Key(0, 1));

        t.SetCounters(Key(0, 0), new ConnectionCounters(1, 2, 3, 4));
        t.SetCounters(Key(0, 1), new ConnectionCounters(5, 6, 7, 8));

        Assert.True(t.TryGetCounters(Key(0, 0), out var c0));
        Assert.Equal(new ConnectionCounters(1, 2, 3, 4), c0);
        Assert.True(t.TryGetCounters(Key(0, 1), out var c1));
        Assert.Equal(new ConnectionCounters(5, 6, 7, 8), c1);
    }

    [Fact]
    public void CountUnannounced_FullTableAndFreedSlots_CountsOnlyLiveUnannouncedOfTheOwner()
    {
        var t = new ConnectionTable(4);
        Add(t, Key(0, 0), owner: 1, createdMs: 1_000);
        Add(t, Key(0, 1), owner: 1, status: ConnectionStatus.Announced);
        Add(t, Key(0, 2), owner: 2);
        Add(t, Key(0, 3), owner: 1, status: ConnectionStatus.Tombstone);

        Assert.Equal(1, t.CountUnannounced(1, 1_500, out long age)); // the table is full: the walk stays inside it
        Assert.Equal(500, age);

        t.Remove(Key(0, 2)); // a freed slot reads as owner 0
        Assert.Equal(0, t.CountUnannounced(0, 1_500, out long none));
        Assert.Equal(0, none);
    }

    [Fact]
    public void CountLive_SkipsTombstonesAndFreedSlots()
    {
        var t = new ConnectionTable(4);
        Assert.Equal(0, t.CountLive());
        Add(t, Key(0, 0));
        Add(t, Key(0, 1), status: ConnectionStatus.Tombstone);
        Add(t, Key(0, 2));
        Add(t, Key(0, 3));
        Assert.Equal(3, t.CountLive());

        t.Remove(Key(0, 2));

        Assert.Equal(2, t.CountLive());
        Assert.Equal(3, t.Count);
    }
}
