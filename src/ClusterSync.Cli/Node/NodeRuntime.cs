using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Workload;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Cli.Node;

/// <summary>
/// The live node: the engine and, for <c>dataPlane.source: generator</c>, the thread that drives the workload
/// generator at the configured rate through <see cref="SyncEngine.Submit(ReadOnlySpan{ConnectionEvent})"/>.
/// A hosted service: started and stopped by the Generic Host (SIGTERM, Ctrl-C).
/// </summary>
internal sealed partial class NodeRuntime : IHostedService, IDisposable
{
    private const int BackpressurePending = 64 * 1024;
    private readonly LoadedNodeConfig _config;
    private readonly ILogger<NodeRuntime> _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ChangeGenerator? _generator;
    private Thread? _generatorThread;
    private long _submitted;
    private volatile bool _finished;
    private int _disposed;

    public NodeRuntime(LoadedNodeConfig config, SyncEngine engine, ILogger<NodeRuntime> logger)
    {
        _config = config;
        Engine = engine;
        _logger = logger;
        var dp = config.Config.DataPlane;
        if (dp.Source == DataPlaneConfig.SourceGenerator)
        {
            _generator = new ChangeGenerator(dp.Generator.Seed, dp.Generator.Connections, dp.Generator.Ipv6Share, config.GeneratorSourceBase);
        }
    }

    public SyncEngine Engine { get; }

    public LoadedNodeConfig Config => _config;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Engine.AdvertisedPriority = (byte)_config.Self.Priority;
        Engine.Start();
        Log.NodeStarted(_logger, _config.Self.Id, _config.LocalEndPoint.ToString(), _config.PeerMembers.Count, _config.Config.DataPlane.Source);
        if (_generator is not null)
        {
            _generatorThread = new Thread(GeneratorLoop) { IsBackground = true, Name = "cs-generator" };
            _generatorThread.Start();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        _generatorThread?.Join(TimeSpan.FromSeconds(5));
        Engine.Dispose();
        Log.NodeStopped(_logger, _config.Self.Id, Interlocked.Read(ref _submitted));
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        // The host disposes this once as a singleton and once as the hosted service.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _generatorThread?.Join(TimeSpan.FromSeconds(5));
        Engine.Dispose();
        _stop.Dispose();
    }

    /// <summary>What <c>/status</c> reports.</summary>
    public NodeStatus GetStatus()
    {
        var peers = Engine.GetPeerStatus();
        return new NodeStatus
        {
            MemberId = Engine.MemberId,
            Epoch = Engine.Epoch,
            State = Engine.IsRunning ? "running" : Engine.Failure is not null ? "failed" : "stopped",
            Failure = Engine.Failure,
            UptimeSeconds = Math.Round(Engine.Uptime.TotalSeconds, 3),
            Encrypted = _config.Key is not null,
            SyncAddress = _config.LocalEndPoint.ToString(),
            TableSize = Engine.LiveConnectionCount,
            TableEntries = Engine.TableCount,
            Pending = Engine.PendingCount,
            LastDataSequence = Engine.LastDataSequence,
            DataPlane = new DataPlaneStatus
            {
                Source = _config.Config.DataPlane.Source,
                LiveConnections = _generator?.LiveCount,
                ChangesSubmitted = Interlocked.Read(ref _submitted),
                Finished = _finished,
            },
            Peers = peers.Select((p, i) => new PeerStatusDocument
            {
                MemberId = p.MemberId,
                Address = _config.PeerEndPoints[i].ToString(),
                Epoch = p.Epoch,
                LastHeardMs = p.LastHeardAgeMs,
                Alive = p.Live,
                State = p.State,
                Priority = p.Priority,
                ReceivedThrough = p.ReceivedThrough,
                AckedThrough = p.AckedThrough,
            }).ToList(),
            Counters = Engine.Counters.ToDictionary(),
        };
    }

    public int? GeneratorLiveConnections => _generator?.LiveCount;

    private void GeneratorLoop()
    {
        var g = _config.Config.DataPlane.Generator;
        var batch = new ConnectionEvent[256];
        var clock = Stopwatch.StartNew();
        long offered = 0;
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (g.MaxChanges > 0 && offered >= g.MaxChanges)
                {
                    _finished = true;
                    Log.GeneratorFinished(_logger, offered, _generator!.LiveCount);
                    return;
                }

                long target = (long)(g.ChangesPerSecond * clock.Elapsed.TotalSeconds);
                if (g.MaxChanges > 0)
                {
                    target = Math.Min(target, g.MaxChanges);
                }

                if (target <= offered || Engine.PendingCount > BackpressurePending)
                {
                    // The data plane delivers a burst about every millisecond, as a kernel event queue would.
                    token.WaitHandle.WaitOne(1);
                    continue;
                }

                int n = (int)Math.Min(batch.Length, target - offered);
                long nowMs = Engine.NowMs();
                for (int i = 0; i < n; i++)
                {
                    _generator!.Next(ref batch[i], nowMs);
                }

                Engine.Submit(batch.AsSpan(0, n));
                offered += n;
                Interlocked.Exchange(ref _submitted, offered);
            }
        }
        catch (ObjectDisposedException) when (token.IsCancellationRequested)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2001, LogLevel.Information, "Node {Member} running: sync on {Address} (UDP), {Peers} peers, data plane '{Source}'")]
        public static partial void NodeStarted(ILogger logger, int member, string address, int peers, string source);

        [LoggerMessage(2002, LogLevel.Information, "Node {Member} stopped after submitting {Submitted} changes")]
        public static partial void NodeStopped(ILogger logger, int member, long submitted);

        [LoggerMessage(2003, LogLevel.Information, "Generator finished: {Submitted} changes submitted, {Live} live connections")]
        public static partial void GeneratorFinished(ILogger logger, long submitted, int live);
    }
}
