using System.Text;
using System.Text.Json;

namespace ClusterSync.Benchmarks;

/// <summary>
/// The "table-memory" mode: managed heap bytes of 1,000,000 connections (full entries with a NAT reply tuple) in a
/// <see cref="ConnectionTable"/> created with capacity 1,000,000, and, for comparison, in a
/// <see cref="Dictionary{TKey, TValue}"/> presized to 1,000,000. Both containers allocate their arrays when
/// constructed, so "bytes" is measured from before construction to after the last insert (GC.GetTotalMemory(true)
/// both times, the container kept alive); "insert_bytes" is the part measured across the inserts only.
/// The keys are generated before the first reading and are not counted. "related_1pct" repeats the table
/// measurement with every hundredth entry a related connection (a master in the table's side table).
/// </summary>
internal static class TableMemory
{
    private const int Entries = 1_000_000;

    public static string Run()
    {
        var keys = Tuples.DistinctKeys(Entries, seed: 77);
        var table = MeasureTable(keys, relatedEvery: 0);
        var related = MeasureTable(keys, relatedEvery: 100);
        var dictionary = MeasureDictionary(keys);
        GC.KeepAlive(keys);

        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteNumber("entries", Entries);
            json.WriteNumber("bytes", table.Total);
            json.WriteNumber("bytes_per_entry", Math.Round((double)table.Total / Entries, 2));
            json.WriteNumber("construction_bytes", table.Construction);
            json.WriteNumber("insert_bytes", table.Insert);
            json.WriteStartObject("related_1pct");
            json.WriteNumber("bytes", related.Total);
            json.WriteNumber("bytes_per_entry", Math.Round((double)related.Total / Entries, 2));
            json.WriteEndObject();
            json.WriteStartObject("dictionary");
            json.WriteNumber("bytes", dictionary.Total);
            json.WriteNumber("bytes_per_entry", Math.Round((double)dictionary.Total / Entries, 2));
            json.WriteNumber("construction_bytes", dictionary.Construction);
            json.WriteNumber("insert_bytes", dictionary.Insert);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private readonly record struct Reading(long Construction, long Insert)
    {
        public long Total => Construction + Insert;
    }

    private static long Settle()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    // NoInlining: the container must be unreachable once the method returns, so it cannot be collected in the
    // middle of the next measurement.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Reading MeasureTable(ConnectionKey[] keys, int relatedEvery)
    {
        long before = Settle();
        var table = new ConnectionTable(capacity: Entries);
        long constructed = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < keys.Length; i++)
        {
            ref var e = ref table.GetOrAdd(keys[i], out _);
            e.CopyFrom(Tuples.Entry(keys[i], version: (ulong)i + 1));
            if (relatedEvery > 0 && i % relatedEvery == 1)
            {
                table.SetMaster(keys[i], ref e, keys[i - 1]);
            }
        }

        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (table.Count != Entries)
        {
            throw new InvalidOperationException($"table holds {table.Count} entries");
        }

        GC.KeepAlive(table);
        return new Reading(constructed - before, after - constructed);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Reading MeasureDictionary(ConnectionKey[] keys)
    {
        long before = Settle();
        var dictionary = new Dictionary<ConnectionKey, ConnectionEntry>(Entries);
        long constructed = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < keys.Length; i++)
        {
            dictionary.Add(keys[i], Tuples.Entry(keys[i], version: (ulong)i + 1));
        }

        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (dictionary.Count != Entries)
        {
            throw new InvalidOperationException($"dictionary holds {dictionary.Count} entries");
        }

        GC.KeepAlive(dictionary);
        return new Reading(constructed - before, after - constructed);
    }
}
