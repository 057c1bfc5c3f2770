namespace ClusterSync.Benchmarks;

/// <summary>
/// The data-plane side of a member: <see cref="SyncEngine.Submit(ReadOnlySpan{ConnectionEvent})"/> of update events
/// against a table of 1,000,000 connections (lookup, version, policy gate, coalescing mark). The engine is not
/// started, so nothing is sent: every connection stays marked pending after its first update, and later updates
/// coalesce into it, as they do while the sender is busy. Results are per event.
/// </summary>
[MemoryDiagnoser]
public class SubmitBenchmarks
{
    private const int Entries = 1_000_000;
    private const int Batch = 256;
    private SyncEngine _engine = null!;
    private ConnectionEvent[][] _batches = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _engine = DiscardChannel.Engine(1, 2, Entries + 1024);
        var keys = Tuples.DistinctKeys(Entries, seed: 7);
        var batch = new ConnectionEvent[Batch];
        for (int i = 0; i < Entries; i += Batch)
        {
            int n = Math.Min(Batch, Entries - i);
            for (int j = 0; j < n; j++)
            {
                batch[j] = ConnectionEvent.Create(ConnectionEventKind.New, keys[i + j], ProtocolState.TcpSynSent, 120, 0);
            }

            _engine.Submit(batch.AsSpan(0, n));
        }

        // Updates in a shuffled order, so the table is touched where real traffic would touch it.
        var shuffled = Tuples.Shuffled(keys, seed: 8);
        _batches = new ConnectionEvent[Entries / Batch][];
        for (int b = 0; b < _batches.Length; b++)
        {
            _batches[b] = new ConnectionEvent[Batch];
            for (int j = 0; j < Batch; j++)
            {
                ref var e = ref _batches[b][j];
                e = ConnectionEvent.Create(ConnectionEventKind.Update, shuffled[(b * Batch) + j], ProtocolState.TcpEstablished, 432000, 0);
                e.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured;
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _engine.Dispose();

    [Benchmark(OperationsPerInvoke = Batch)]
    public void SubmitUpdates()
    {
        _engine.Submit(_batches[_next]);
        if (++_next == _batches.Length)
        {
            _next = 0;
        }
    }
}
