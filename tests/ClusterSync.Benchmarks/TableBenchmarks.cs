using System.Runtime.InteropServices;

namespace ClusterSync.Benchmarks;

/// <summary>
/// <see cref="ConnectionTable"/> holding 1,000,000 IPv4 connections, against a presized
/// <see cref="Dictionary{TKey, TValue}"/> of the same keys and entries (default comparer, i.e.
/// ConnectionKey.GetHashCode). Each invocation does <see cref="Batch"/> operations on keys taken in a random
/// order over the whole table (a cursor walks a shuffled copy of all keys), so lookups are random accesses into
/// a ~120 MB structure, not cache-resident. Results are per operation; every category has its own
/// Dictionary baseline. Both containers are sized for 1,000,000 + <see cref="Batch"/> entries so the
/// insert+remove cycle never grows them.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class TableBenchmarks
{
    public const int Batch = 1024;
    private const int Entries = 1_000_000;
    private const int FreshKeys = 64 * Batch;

    private ConnectionTable _table = null!;
    private Dictionary<ConnectionKey, ConnectionEntry> _dictionary = null!;
    private ConnectionKey[] _probe = null!;  // the 1,000,000 stored keys, shuffled
    private ConnectionKey[] _fresh = null!;  // keys not in the table, for insert+remove
    private ConnectionEntry _template;
    private int _cursor;
    private int _freshCursor;

    [GlobalSetup(Targets = new[] { nameof(TableFind), nameof(TableUpdateInPlace), nameof(TableInsertRemove) })]
    public void SetupTable()
    {
        var keys = Prepare();
        _table = new ConnectionTable(Entries + Batch);
        foreach (var key in keys)
        {
            ref var e = ref _table.GetOrAdd(key, out _);
            e.CopyFrom(Tuples.Entry(key, version: 1));
        }
    }

    [GlobalSetup(Targets = new[] { nameof(DictionaryFind), nameof(DictionaryUpdateInPlace), nameof(DictionaryInsertRemove) })]
    public void SetupDictionary()
    {
        var keys = Prepare();
        _dictionary = new Dictionary<ConnectionKey, ConnectionEntry>(Entries + Batch);
        foreach (var key in keys)
        {
            _dictionary.Add(key, Tuples.Entry(key, version: 1));
        }
    }

    private ConnectionKey[] Prepare()
    {
        var all = Tuples.DistinctKeys(Entries + FreshKeys, seed: 5);
        var keys = all[..Entries];
        _fresh = all[Entries..];
        _probe = Tuples.Shuffled(keys, seed: 6);
        _template = Tuples.Entry(_fresh[0], version: 1);
        return keys;
    }

    private int NextProbe()
    {
        int start = _cursor;
        if (start > _probe.Length - Batch)
        {
            start = 0;
        }

        _cursor = start + Batch;
        return start;
    }

    private int NextFresh()
    {
        int start = _freshCursor;
        _freshCursor = start + Batch == _fresh.Length ? 0 : start + Batch;
        return start;
    }

    // ---- lookup hit ----

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    [BenchmarkCategory("LookupHit")]
    public ulong DictionaryFind()
    {
        var probe = _probe.AsSpan(NextProbe(), Batch);
        var dictionary = _dictionary;
        ulong sum = 0;
        foreach (ref readonly var key in probe)
        {
            ref var e = ref CollectionsMarshal.GetValueRefOrNullRef(dictionary, key);
            if (Unsafe.IsNullRef(ref e))
            {
                throw new InvalidOperationException("missing key");
            }

            sum += e.Version;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    [BenchmarkCategory("LookupHit")]
    public ulong TableFind()
    {
        var probe = _probe.AsSpan(NextProbe(), Batch);
        var table = _table;
        ulong sum = 0;
        foreach (ref readonly var key in probe)
        {
            ref var e = ref table.Find(key);
            if (Unsafe.IsNullRef(ref e))
            {
                throw new InvalidOperationException("missing key");
            }

            sum += e.Version;
        }

        return sum;
    }

    // ---- update in place (existing key) ----

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    [BenchmarkCategory("UpdateInPlace")]
    public int DictionaryUpdateInPlace()
    {
        var probe = _probe.AsSpan(NextProbe(), Batch);
        var dictionary = _dictionary;
        int added = 0;
        foreach (ref readonly var key in probe)
        {
            ref var e = ref CollectionsMarshal.GetValueRefOrAddDefault(dictionary, key, out bool exists);
            added += exists ? 0 : 1;
            e.Version++;
            e.UpdatedMs += 1000;
            e.State = ProtocolState.TcpEstablished;
        }

        return added;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    [BenchmarkCategory("UpdateInPlace")]
    public int TableUpdateInPlace()
    {
        var probe = _probe.AsSpan(NextProbe(), Batch);
        var table = _table;
        int added = 0;
        foreach (ref readonly var key in probe)
        {
            ref var e = ref table.GetOrAdd(key, out bool isNew);
            added += isNew ? 1 : 0;
            e.Version++;
            e.UpdatedMs += 1000;
            e.State = ProtocolState.TcpEstablished;
        }

        return added;
    }

    // ---- insert a new connection, then remove it (per insert+remove pair) ----

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    [BenchmarkCategory("InsertRemove")]
    public int DictionaryInsertRemove()
    {
        var fresh = _fresh.AsSpan(NextFresh(), Batch);
        var dictionary = _dictionary;
        int removed = 0;
        foreach (ref readonly var key in fresh)
        {
            ref var e = ref CollectionsMarshal.GetValueRefOrAddDefault(dictionary, key, out _);
            e = _template;
        }

        foreach (ref readonly var key in fresh)
        {
            removed += dictionary.Remove(key) ? 1 : 0;
        }

        return removed;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    [BenchmarkCategory("InsertRemove")]
    public int TableInsertRemove()
    {
        var fresh = _fresh.AsSpan(NextFresh(), Batch);
        var table = _table;
        int removed = 0;
        foreach (ref readonly var key in fresh)
        {
            ref var e = ref table.GetOrAdd(key, out _);
            e.CopyFrom(_template);
        }

        foreach (ref readonly var key in fresh)
        {
            removed += table.Remove(key) ? 1 : 0;
        }

        return removed;
    }
}
