using BenchmarkDotNet.Attributes;
using ClusterSync.Connections;
using ClusterSync.Engine;

namespace ClusterSync.Benchmarks;

/// <summary>
/// PendingBatch (the sender's coalescing queue, created by the engine with capacity 1024): upserting
/// <see cref="Keys"/> distinct connections then clearing, as one sender cycle does. Results are per upsert.
/// </summary>
[MemoryDiagnoser]
public class CoalesceBenchmarks
{
    public const int Keys = 1024;

    private PendingBatch _batch = null!;
    private ConnectionEvent[] _events = null!;

    [GlobalSetup]
    public void Setup()
    {
        _batch = new PendingBatch(Keys);
        var keys = Tuples.DistinctKeys(Keys, seed: 1024);
        _events = new ConnectionEvent[Keys];
        for (int i = 0; i < Keys; i++)
        {
            _events[i] = Tuples.Update(keys[i], version: (ulong)i + 1);
        }
    }

    /// <summary>1024 distinct keys, each one a new item, then Clear.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Keys)]
    public int UpsertDistinctThenClear()
    {
        var batch = _batch;
        var events = _events;
        for (int i = 0; i < events.Length; i++)
        {
            batch.Upsert(events[i]);
        }

        int count = batch.Count;
        batch.Clear();
        return count;
    }

    /// <summary>The same 1024 keys twice (the second pass replaces, i.e. coalesces), then Clear; per upsert (2048).</summary>
    [Benchmark(OperationsPerInvoke = 2 * Keys)]
    public int UpsertTwiceThenClear()
    {
        var batch = _batch;
        var events = _events;
        int coalesced = 0;
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < events.Length; i++)
            {
                if (batch.Upsert(events[i]))
                {
                    coalesced++;
                }
            }
        }

        batch.Clear();
        return coalesced;
    }
}
