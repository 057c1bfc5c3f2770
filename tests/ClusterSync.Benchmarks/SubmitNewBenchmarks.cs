using ClusterSync.Classification;

namespace ClusterSync.Benchmarks;

/// <summary>
/// New connections through <see cref="SyncEngine.Submit(ReadOnlySpan{ConnectionEvent})"/>: classified by the built-in
/// in-process rules (the baseline) or through the isolated plugin slot (<see cref="ServiceClassCatalog.BindPlugin"/>:
/// the watchdog timestamp, the call, the class-name lookup, outside the table lock). Each operation is one New and one
/// Destroy of a never-synchronized connection (class policy none), so the table stays small. Results are per connection.
/// </summary>
[MemoryDiagnoser]
public class SubmitNewBenchmarks
{
    private const int Batch = 256;
    private SyncEngine _engine = null!;
    private ConnectionEvent[] _news = null!;
    private ConnectionEvent[] _destroys = null!;

    [Params(false, true)]
    public bool Plugin { get; set; }

    /// <summary>What a plugin would do: the same port rules, behind the plugin contract.</summary>
    private sealed class RulesClassifier(IConnectionClassifier inner) : IConnectionClassifier
    {
        public string Name => "bench-plugin";

        public string? Classify(in ConnectionKey connection) => inner.Classify(connection);
    }

    [GlobalSetup]
    public void Setup()
    {
        var policy = new PolicyOptions
        {
            DefaultClass = "never",
            Classes = [new ServiceClassOptions { Name = "never", Policy = "none" }, new ServiceClassOptions { Name = "also-never", Policy = "none" }],
            Rules = [new ClassRuleOptions { Protocol = "tcp", Ports = "443", Class = "also-never" }],
        };
        _engine = DiscardChannel.Engine(1, 2, 4096, policy);
        if (Plugin)
        {
            _engine.Catalog.BindPlugin("bench-plugin", "1.0.0", new RulesClassifier(new PortProtocolClassifier(policy.Rules)));
        }

        var keys = Tuples.DistinctKeys(Batch, seed: 3);
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
