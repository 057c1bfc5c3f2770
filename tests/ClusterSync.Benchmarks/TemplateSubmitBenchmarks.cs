namespace ClusterSync.Benchmarks;

/// <summary>
/// The submit path of short connections with connection templates (docs/templates.md): one New and one Destroy of a
/// never-synchronized connection per operation (as <see cref="SubmitNewBenchmarks"/>), with templates off (the
/// baseline: the path every member without templates runs), on with every connection of its own shape (its shape
/// counted toward a threshold it never reaches: the worst case), and on with every connection of one shape (covered by its template: the case
/// templates are for). Results are per connection.
/// </summary>
[MemoryDiagnoser]
public class TemplateSubmitBenchmarks
{
    private const int Batch = 256;
    private SyncEngine _engine = null!;
    private ConnectionEvent[] _news = null!;
    private ConnectionEvent[] _destroys = null!;

    public enum Shapes
    {
        TemplatesOff,
        DistinctShapes,
        OneShape,
    }

    [Params(Shapes.TemplatesOff, Shapes.DistinctShapes, Shapes.OneShape)]
    public Shapes Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var policy = new PolicyOptions
        {
            DefaultClass = "never",
            Classes =
            [
                new ServiceClassOptions
                {
                    Name = "never",
                    Policy = "none",
                    Templates = Mode == Shapes.TemplatesOff ? null : new TemplateOptions
                    {
                        // Distinct shapes: counted, never reaching the threshold (the counting path); one shape: its template covers it.
                        Threshold = Mode == Shapes.DistinctShapes ? 1_000_000 : 20,
                        WindowSeconds = 3600,
                        LifetimeSeconds = 3600,
                    },
                },
            ],
            Rules = [],
        };
        _engine = DiscardChannel.Engine(1, 2, 4096, policy);
        var keys = Mode == Shapes.OneShape
            ? Enumerable.Range(0, Batch).Select(i => ConnectionKey.IPv4(0x0A00_0001, 0xC0A8_0101, (ushort)(20000 + i), 80, 6)).ToArray()
            : Tuples.DistinctKeys(Batch, seed: 3);
        _news = new ConnectionEvent[Batch];
        _destroys = new ConnectionEvent[Batch];
        for (int i = 0; i < Batch; i++)
        {
            _news[i] = ConnectionEvent.Create(ConnectionEventKind.New, keys[i], ProtocolState.TcpSynSent, 120, 0);
            _destroys[i] = ConnectionEvent.Create(ConnectionEventKind.Destroy, keys[i], ProtocolState.TcpClose, 0, 0);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _engine.Dispose();

    [Benchmark(OperationsPerInvoke = Batch)]
    public void SubmitNewAndDestroy()
    {
        _engine.Submit(_news);
        _engine.Submit(_destroys);
    }
}
