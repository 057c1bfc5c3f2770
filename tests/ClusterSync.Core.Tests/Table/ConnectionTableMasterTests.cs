namespace ClusterSync.Core.Tests.Table;

/// <summary>The side table of masters and the mark inside the slot.</summary>
public class ConnectionTableMasterTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.IPv4((uint)(0x0A00_0000 + i), 0x0B00_0001, (ushort)(1024 + i), 443, 6);

    private static readonly ConnectionKey Control = ConnectionKey.IPv4(0x0A00_0001, 0x0B00_0001, 40000, 21, 6, zone: 4);

    [Fact]
    public void Slot_StaysWithin124Bytes()
    {
        Assert.Equal(76, Unsafe.SizeOf<TableEntry>());
        Assert.Equal(120, Unsafe.SizeOf<ConnectionEntry>());
    }

    [Fact]
    public void SetMaster_ThenRead_EntryCarriesMasterAndMark()
    {
        var t = new ConnectionTable(16);
        ref var e = ref t.GetOrAdd(Key(1), out _);
        e.Version = 5;
        e.Mark = 0xABCD;
        t.SetMaster(Key(1), ref e, Control);

        Assert.True(t.TryGetAt(0, out var key, out var entry));
        Assert.Equal(Key(1), key);
        Assert.Equal(Control, entry.Master);
        Assert.Equal(0xABCDu, entry.Mark);
        Assert.Equal(1, t.MasterCount);
        Assert.Equal(Control, t.ToList().Single().Value.Master);
    }

    [Fact]
    public void SetMaster_Default_ClearsSideTable()
    {
        var t = new ConnectionTable(16);
        ref var e = ref t.GetOrAdd(Key(1), out _);
        t.SetMaster(Key(1), ref e, Control);

        t.SetMaster(Key(1), ref e, default);

        Assert.Equal(0, t.MasterCount);
        Assert.False(e.HasMaster); // the slot's flag too: an entry without a master never looks in the side table
        Assert.False(t.ToList().Single().Value.HasMaster);
    }

    [Fact]
    public void Remove_AndSweep_DropTheirMasters()
    {
        var t = new ConnectionTable(16);
        for (int i = 0; i < 4; i++)
        {
            ref var e = ref t.GetOrAdd(Key(i), out _);
            e.UpdatedMs = i < 2 ? 0 : 1_000_000;
            e.TimeoutSeconds = 1;
            t.SetMaster(Key(i), ref e, Control);
        }

        Assert.True(t.Remove(Key(3)));
        int cursor = 0;
        Assert.Equal(2, t.SweepExpired(10_000, ref cursor, 16));

        Assert.Equal(1, t.MasterCount);
        ref var fresh = ref t.GetOrAdd(Key(0), out bool added);
        Assert.True(added);
        Assert.False(fresh.HasMaster);
    }

    [Fact]
    public void Grow_KeepsMasters()
    {
        var t = new ConnectionTable(2);
        for (int i = 0; i < 40; i++)
        {
            ref var e = ref t.GetOrAdd(Key(i), out _);
            e.Version = (ulong)i + 1;
            if (i % 3 == 0)
            {
                t.SetMaster(Key(i), ref e, Control);
            }
        }

        var all = t.ToList().ToDictionary(kv => kv.Key, kv => kv.Value);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(i % 3 == 0, all[Key(i)].HasMaster);
        }
    }

    [Fact]
    public void MasterOf_CopyTakenBeforeTheMasterWasSet_ReadsNoMaster()
    {
        var t = new ConnectionTable(16);
        ref var e = ref t.GetOrAdd(Key(1), out _);
        var before = e;
        t.SetMaster(Key(1), ref e, Control);

        Assert.Equal(default, t.MasterOf(Key(1), before));
        Assert.False(t.Read(Key(1), before).HasMaster);
        Assert.Equal(Control, t.MasterOf(Key(1), e));
    }

    [Fact]
    public void MasterOf_FlaggedEntryOfAnotherKey_ReadsThatKeysMasterOnly()
    {
        var t = new ConnectionTable(16);
        ref var e = ref t.GetOrAdd(Key(1), out _);
        t.SetMaster(Key(1), ref e, Control);

        Assert.Equal(default, t.MasterOf(Key(2), e));
        Assert.Equal(1, t.MasterCount);
    }
}
