using ClusterSync.Adaptive.Controller;

namespace ClusterSync.Benchmarks;

/// <summary>
/// What adaptive mode costs per new connection: <see cref="AdaptiveController.Decide"/> with the shipped ML.NET model
/// (features, compiled trees, calibration bucket, delay choice) and in cold start (per-class table), against the
/// static class policy alone. The target: ≤ 2 µs per new connection.
/// </summary>
[MemoryDiagnoser]
public class AdaptiveDecideBenchmarks
{
    private const int Keys = 4096;
    private static readonly ServiceClassDefinition[] Classes =
    [
        new("mission-critical", SyncPolicy.Full),
        new("short-lived", SyncPolicy.Delayed(TimeSpan.FromSeconds(3))),
        new("non-sync", SyncPolicy.Never),
        new("default", SyncPolicy.Full),
    ];

    private AdaptiveController _model = null!;
    private AdaptiveController _coldStart = null!;
    private ConnectionKey[] _keys = null!;
    private ConnectionEntry _entry;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _model = new AdaptiveController(new AdaptiveOptions { Enabled = true }, Classes);
        if (!_model.TryLoadModel(new LifetimeModelLoader(), ShippedModel(), out var reason))
        {
            throw new InvalidOperationException(reason);
        }

        _coldStart = new AdaptiveController(new AdaptiveOptions { Enabled = true }, Classes);
        var rng = new Random(3);
        ushort[] ports = [53, 80, 443, 22, 123, 3389, 445, 8080, 25, 5060];
        _keys = new ConnectionKey[Keys];
        for (int i = 0; i < Keys; i++)
        {
            _keys[i] = ConnectionKey.IPv4(0x0A000000u + (uint)rng.Next(1 << 16), (uint)rng.Next(), (ushort)rng.Next(1024, 65535),
                ports[rng.Next(ports.Length)], (byte)(rng.Next(3) == 0 ? 17 : 6));
        }

        _entry = new ConnectionEntry { CreatedMs = 1_700_000_000_000 };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _model.Dispose();
        _coldStart.Dispose();
    }

    [Benchmark(Baseline = true)]
    public int StaticPolicy()
    {
        var k = _keys[_next++ & (Keys - 1)];
        return Result(SyncDecision.From(k.DestinationPort == 80 ? Classes[1].Policy : Classes[3].Policy));
    }

    [Benchmark]
    public int DecideWithModel() => Result(_model.Decide(_keys[_next++ & (Keys - 1)], _entry, 3, SyncPolicy.Full));

    [Benchmark]
    public int DecideColdStart() => Result(_coldStart.Decide(_keys[_next++ & (Keys - 1)], _entry, 1, Classes[1].Policy));

    private static int Result(SyncDecision d) => d.DelayMs + (int)d.Kind;

    private static string ShippedModel()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? Environment.CurrentDirectory, "models", "lifetime.zip");
    }
}
