using System.Text.Json;
using ClusterSync.Connections;
using ClusterSync.DataPlane;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin("faulty-plane", "1.0.0", PluginKind.DataPlane)]

namespace ClusterSync.TestPlugins;

/// <summary>
/// A misbehaving data plane for the isolation tests. Settings: <c>failAfter</c> (its source submits that many new
/// connections, then throws; without it there is no source), <c>sinkThrows</c> (its sink's commit throws),
/// <c>sinkDelayMs</c> (its sink's commit takes that long: a slow kernel commit, for the state-hook ordering tests).
/// </summary>
public sealed class FaultyDataPlaneFactory : IDataPlaneFactory
{
    public string Name => "faulty-plane";

    public IConnectionSource? CreateSource(DataPlaneContext context)
        => context.Settings is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("failAfter", out var n) ? new FaultySource(n.GetInt32()) : null;

    public IReplicaSink CreateSink(DataPlaneContext context)
        => new FaultySink(context.Settings is { ValueKind: JsonValueKind.Object } s && s.TryGetProperty("sinkThrows", out var t) && t.GetBoolean(),
            context.Settings is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("sinkDelayMs", out var ms) ? ms.GetInt32() : 0);
}

public sealed class FaultySource(int failAfter) : IConnectionSource
{
    public string Name => "faulty-source";

    public Task RunAsync(IConnectionEventSink sink, CancellationToken cancellationToken)
    {
        var batch = new ConnectionEvent[1];
        for (int i = 0; i < failAfter; i++)
        {
            var key = ConnectionKey.IPv4(0x0A05_0000u + (uint)i, 0xC633_6401u, (ushort)(20000 + (i % 40000)), 443, 6);
            batch[0] = ConnectionEvent.Create(ConnectionEventKind.New, key, ProtocolState.TcpEstablished, 3600, 0);
            sink.Submit(batch);
        }

        throw new InvalidOperationException($"faulty source: broke after {failAfter} connections");
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class FaultySink(bool throws, int delayMs = 0) : IReplicaSink
{
    public string Name => "faulty-sink";

    public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        if (delayMs > 0)
        {
            Thread.Sleep(delayMs); // a slow data plane (a large kernel commit), on the node's commit task
        }

        if (throws)
        {
            throw new InvalidOperationException($"faulty sink: refused {replica.Count} connections");
        }
    }
}
