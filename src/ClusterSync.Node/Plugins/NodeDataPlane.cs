using ClusterSync.Connections;
using ClusterSync.DataPlane;
using ClusterSync.Engine;
using ClusterSync.Membership;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Plugins;

/// <summary>What <c>/status</c> reports under <c>dataPlane.plugin</c>.</summary>
public sealed record DataPlanePluginStatus
{
    public string Name { get; init; } = "";

    public string? Version { get; init; }

    /// <summary>The source's name, or null for a sink-only data plane.</summary>
    public string? Source { get; init; }

    public string Sink { get; init; } = "";

    /// <summary><c>none</c>, <c>waiting</c> (not Active), <c>running</c>, <c>finished</c> or <c>failed</c>.</summary>
    public string SourceState { get; init; } = "";

    public long SourceExceptions { get; init; }

    public long SinkCommits { get; init; }

    public long SinkExceptions { get; init; }

    /// <summary>Connections handed to the plugin's sink by its last successful commit.</summary>
    public long SinkLastCommitted { get; init; }

    /// <summary>True while a commit into the plugin's sink runs (and has not timed out): the source is held meanwhile.</summary>
    public bool SinkCommitting { get; init; }

    /// <summary>How long the plugin's last finished commit took, in milliseconds (0: none yet).</summary>
    public double SinkLastCommitMs { get; init; }

    /// <summary>When the plugin's last commit finished (or failed, or timed out), Unix milliseconds (0: none yet).</summary>
    public long SinkCommitFinishedUnixMs { get; init; }

    /// <summary>Commits that did not finish within <c>dataPlane.commitTimeoutSeconds</c> (the source was released anyway).</summary>
    public long SinkCommitTimeouts { get; init; }

    /// <summary>Times the live connection templates were handed to a plugin sink that takes them (<c>IReplicaTemplateSink</c>).</summary>
    public long SinkTemplateCommits { get; init; }

    /// <summary>True when this member is Active and no commit into the plugin's sink is pending: traffic may move here (<c>/readyz</c>).</summary>
    public bool Serving { get; init; }

    /// <summary>The last plugin failure (source or sink), or null.</summary>
    public string? Failure { get; init; }

    /// <summary>The source's own counters (when it reports them).</summary>
    public IReadOnlyDictionary<string, long>? SourceCounters { get; init; }

    /// <summary>The sink's own counters (when it reports them).</summary>
    public IReadOnlyDictionary<string, long>? SinkCounters { get; init; }
}

/// <summary>
/// A node's data-plane plugin (<c>dataPlane.source: plugin</c>): its source feeds the engine only while this member is
/// Active (in high availability; in load sharing every member is Active once synchronized), and its sink receives the
/// replica committed on failover, after the in-process sink (which keeps <c>/status</c>'s committed digest). Isolation:
/// the source runs on a thread of its own and the sink's commit on a task of its own (never on the membership
/// controller's thread, so a hanging sink cannot hold up a failover); an exception from either is counted, logged and
/// reported by <c>/status</c> and <c>/healthz</c>, and never stops the node.
/// </summary>
public sealed partial class NodeDataPlane : IDisposable
{
    private readonly IConnectionSource? _source;
    private readonly IReplicaSink _sink;
    private readonly ILogger _logger;
    private readonly object _commitLock = new();
    private Task _commits = Task.CompletedTask;
    private Thread? _thread;
    private string _sourceState;
    private string? _failure;
    private long _sourceExceptions;
    private long _sinkExceptions;
    private long _sinkCommits;
    private long _sinkLastCommitted;
    private long _submitted;
    private readonly TimeProvider _time;
    private readonly TimeSpan _commitTimeout;
    private readonly ManualResetEventSlim _commitIdle = new(true);
    private int _commitsPending;
    private long _sinkLastCommitMicros;
    private long _sinkCommitFinishedUnixMs;
    private long _sinkCommitTimeouts;
    private long _sinkTemplateCommits;
    private Func<bool> _isActive = static () => false;

    private NodeDataPlane(string name, string? version, IConnectionSource? source, IReplicaSink sink, ILogger logger, TimeSpan commitTimeout, TimeProvider time)
    {
        Name = name;
        Version = version;
        _source = source;
        _sink = sink;
        _logger = logger;
        _sourceState = source is null ? "none" : "waiting";
        _commitTimeout = commitTimeout;
        _time = time;
    }

    /// <summary>
    /// True while a commit into the plugin's sink runs and has not timed out. The source does not submit meanwhile (it
    /// is not even started on the first promotion), so it neither competes with the commit for the CPU nor lets the
    /// node look like it serves a data plane that is still being filled.
    /// </summary>
    public bool Committing => Volatile.Read(ref _commitsPending) > 0;

    /// <summary>This member is Active and its data plane holds the replica (no commit pending): it serves.</summary>
    public bool Serving => _isActive() && !Committing;

    public string Name { get; }

    public string? Version { get; }

    /// <summary>Changes the source submitted to the engine.</summary>
    public long Submitted => Interlocked.Read(ref _submitted);

    public bool Finished => Volatile.Read(ref _sourceState) == "finished";

    /// <summary>The last plugin failure (the node's health is red while set), or null.</summary>
    public string? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// The data plane over the source and sink the plugin's factory created when the configuration was validated (its
    /// name and version for <c>/status</c>); owns the source from now on.
    /// </summary>
    public static NodeDataPlane Compose(string name, string? version, IConnectionSource? source, IReplicaSink sink, TimeSpan commitTimeout, TimeProvider time, ILoggerFactory? loggerFactory)
        => new(name, version, source, sink, loggerFactory?.CreateLogger("ClusterSync.DataPlane") ?? NullLogger.Instance, commitTimeout, time);

    /// <summary>A data plane over a source and sink created by the caller (tests).</summary>
    internal static NodeDataPlane ForTests(IConnectionSource? source, IReplicaSink sink, TimeSpan commitTimeout, TimeProvider time)
        => new("test-plane", null, source, sink, NullLogger.Instance, commitTimeout, time);

    /// <summary>The sink the membership controller commits into: the in-process sink, then (off-thread) the plugin's.</summary>
    public IReplicaSink WrapSink(InMemoryReplicaSink inner) => new ChainedSink(this, inner);

    /// <summary>Starts the source's thread: it waits until <paramref name="isActive"/>, then runs the source (gated by it).</summary>
    public void Start(SyncEngine engine, Func<bool> isActive, CancellationToken stop)
    {
        _isActive = isActive;
        if (_source is null)
        {
            return;
        }

        _thread = new Thread(() => RunSource(engine, isActive, stop)) { IsBackground = true, Name = "cs-dataplane" };
        _thread.Start();
    }

    /// <summary>Waits for the source's thread (after the stop token was cancelled) and the last commit, bounded.</summary>
    public void Stop(TimeSpan timeout)
    {
        _thread?.Join(timeout);
        try
        {
            _commits.Wait(timeout);
        }
        catch (AggregateException)
        {
        }
    }

    private void RunSource(SyncEngine engine, Func<bool> isActive, CancellationToken stop)
    {
        if (!WaitUntilActive(isActive, stop))
        {
            return;
        }

        // Promotion queued the commit into the plugin's sink before it published Active: the source starts only after
        // that commit finished, failed or timed out (its start-of-run dump reconciles whatever the commit created).
        if (!WaitForCommit(stop))
        {
            return;
        }

        Volatile.Write(ref _sourceState, "running");
        Log.SourceRunning(_logger, Name, engine.MemberId);
        try
        {
            _source!.RunAsync(new ActiveGate(this, engine, isActive, stop), stop).GetAwaiter().GetResult();
            Volatile.Write(ref _sourceState, "finished");
            Log.SourceFinished(_logger, Name, Submitted);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Interlocked.Increment(ref _sourceExceptions);
            Volatile.Write(ref _failure, $"source failed: {ex.GetType().Name}: {ex.Message}");
            Volatile.Write(ref _sourceState, "failed");
            Log.SourceFailed(_logger, Name, ex);
        }
    }

    /// <summary>Polls <paramref name="isActive"/> every 5 ms until it holds; false when stopped first.</summary>
    private static bool WaitUntilActive(Func<bool> isActive, CancellationToken stop)
    {
        while (!isActive())
        {
            if (stop.WaitHandle.WaitOne(5))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Blocks until no commit into the plugin's sink is pending (finished, failed or timed out); false when
    /// <paramref name="stop"/> fired first. The state hooks wait here before <c>onActive</c> (never the control tick).
    /// </summary>
    public bool WaitForCommitEnd(CancellationToken stop) => WaitForCommit(stop);

    /// <summary>When the last commit into the plugin's sink ended (Unix ms, the node's clock); 0 before any.</summary>
    public long CommitEndedUnixMs => Interlocked.Read(ref _sinkCommitFinishedUnixMs);

    /// <summary>Waits until no commit into the plugin's sink is pending (finished, failed or timed out); false when stopped.</summary>
    private bool WaitForCommit(CancellationToken stop)
    {
        if (_commitIdle.IsSet)
        {
            return true;
        }

        WaitHandle.WaitAny([_commitIdle.WaitHandle, stop.WaitHandle]);
        return !stop.IsCancellationRequested;
    }

    private void CommitToPlugin(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        var commit = new PendingCommit(this, replica.Count);
        lock (_commitLock)
        {
            if (Interlocked.Increment(ref _commitsPending) == 1)
            {
                _commitIdle.Reset();
            }

            // The bound starts when the commit is queued: a hanging commit holds the source (and the next commit) for at
            // most this long, never the membership controller's thread.
            commit.Timer = _time.CreateTimer(static c => ((PendingCommit)c!).TimedOut(), commit, _commitTimeout, Timeout.InfiniteTimeSpan);
            _commits = _commits.ContinueWith(_ =>
            {
                long started = _time.GetTimestamp();
                try
                {
                    _sink.Commit(replica);
                    Interlocked.Increment(ref _sinkCommits);
                    Interlocked.Exchange(ref _sinkLastCommitted, replica.Count);
                    double ms = _time.GetElapsedTime(started).TotalMilliseconds;
                    Interlocked.Exchange(ref _sinkLastCommitMicros, (long)(ms * 1000));
                    Log.SinkCommitted(_logger, Name, replica.Count, ms);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref _sinkExceptions);
                    Volatile.Write(ref _failure, $"sink failed to commit {replica.Count} connections: {ex.GetType().Name}: {ex.Message}");
                    Log.SinkFailed(_logger, Name, replica.Count, ex);
                }
                finally
                {
                    commit.Finished();
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// Hands the live templates of a takeover to a plugin sink that takes them (<see cref="IReplicaTemplateSink"/>), on
    /// the commit task right after the connections it goes with; a sink without the interface never sees them.
    /// </summary>
    private void CommitTemplatesToPlugin(IReadOnlyList<Templates.ConnectionTemplate> templates)
    {
        if (_sink is not IReplicaTemplateSink templateSink)
        {
            return;
        }

        var copy = new ReplicaTemplate[templates.Count];
        for (int i = 0; i < copy.Length; i++)
        {
            var t = templates[i];
            copy[i] = new ReplicaTemplate(t.Key, t.ServiceClass, t.LifetimeSeconds, t.UpdatedMs);
        }

        lock (_commitLock)
        {
            _commits = _commits.ContinueWith(_ =>
            {
                try
                {
                    templateSink.CommitTemplates(copy);
                    Interlocked.Increment(ref _sinkTemplateCommits);
                    Log.SinkTemplatesCommitted(_logger, Name, copy.Length);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    Interlocked.Increment(ref _sinkExceptions);
                    Volatile.Write(ref _failure, $"sink failed to install {copy.Length} connection templates: {ex.GetType().Name}: {ex.Message}");
                    Log.SinkTemplatesFailed(_logger, Name, copy.Length, ex);
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    /// <summary>One commit into the plugin's sink: ends once, when it finished (or failed) or when its timeout fired.</summary>
    private sealed class PendingCommit(NodeDataPlane owner, int count)
    {
        private int _ended;

        public ITimer? Timer { get; set; }

        public void Finished()
        {
            Timer?.Dispose();
            End();
        }

        public void TimedOut()
        {
            if (!End())
            {
                return;   // it finished first
            }

            Interlocked.Increment(ref owner._sinkCommitTimeouts);
            Volatile.Write(ref owner._failure, $"sink did not finish committing {count} connections within {owner._commitTimeout.TotalSeconds:0.#} s (dataPlane.commitTimeoutSeconds); the source runs anyway");
            Log.SinkTimedOut(owner._logger, owner.Name, count, owner._commitTimeout.TotalSeconds);
        }

        /// <summary>Ends the commit as far as the source is concerned; false when it had ended already.</summary>
        private bool End()
        {
            if (Interlocked.Exchange(ref _ended, 1) != 0)
            {
                return false;
            }

            Interlocked.Exchange(ref owner._sinkCommitFinishedUnixMs, owner._time.GetUtcNow().ToUnixTimeMilliseconds());
            lock (owner._commitLock)
            {
                if (Interlocked.Decrement(ref owner._commitsPending) == 0)
                {
                    owner._commitIdle.Set();
                }
            }

            return true;
        }
    }

    public DataPlanePluginStatus GetStatus() => new()
    {
        Name = Name,
        Version = Version,
        Source = _source?.Name,
        Sink = _sink.Name,
        SourceState = Volatile.Read(ref _sourceState),
        SourceExceptions = Interlocked.Read(ref _sourceExceptions),
        SinkCommits = Interlocked.Read(ref _sinkCommits),
        SinkExceptions = Interlocked.Read(ref _sinkExceptions),
        SinkLastCommitted = Interlocked.Read(ref _sinkLastCommitted),
        SinkCommitting = Committing,
        SinkLastCommitMs = Interlocked.Read(ref _sinkLastCommitMicros) / 1000.0,
        SinkCommitFinishedUnixMs = Interlocked.Read(ref _sinkCommitFinishedUnixMs),
        SinkCommitTimeouts = Interlocked.Read(ref _sinkCommitTimeouts),
        SinkTemplateCommits = Interlocked.Read(ref _sinkTemplateCommits),
        Serving = Serving,
        Failure = Failure,
        SourceCounters = Counters(_source as IDataPlaneStatus, "source"),
        SinkCounters = Counters(_sink as IDataPlaneStatus, "sink"),
    };

    private IReadOnlyDictionary<string, long>? Counters(IDataPlaneStatus? status, string part)
    {
        if (status is null)
        {
            return null;
        }

        try
        {
            return new Dictionary<string, long>(status.GetCounters());
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.CountersFailed(_logger, Name, part, ex.Message);
            return null;
        }
    }

    public void Dispose()
    {
        _commitIdle.Set();
        if (_source is not null)
        {
            try
            {
                _source.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.SourceFailed(_logger, Name, ex);
            }
        }

        // A sink that holds kernel state of its own (the conntrack sink's template pickup window: rules, sets, a sysctl)
        // removes it when the node stops, after the last commit (Stop waited for it).
        if (_sink is IDisposable disposable)
        {
            try
            {
                disposable.Dispose();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.SinkDisposeFailed(_logger, Name, ex);
            }
        }
    }

    /// <summary>The engine's submit path as the plugin's source sees it: held while this member is not Active.</summary>
    private sealed class ActiveGate(NodeDataPlane owner, SyncEngine engine, Func<bool> isActive, CancellationToken stop) : IConnectionEventSink
    {
        public int PendingCount => engine.PendingCount;

        public void Submit(ReadOnlySpan<ConnectionEvent> changes)
        {
            // A later promotion: its commit into the plugin's sink goes first (bounded by the commit timeout).
            if (!owner.WaitForCommit(stop))
            {
                throw new OperationCanceledException(stop);
            }

            // A Standby's data plane carries no traffic: the source is held until this member is Active again.
            if (!WaitUntilActive(isActive, stop))
            {
                throw new OperationCanceledException(stop);
            }

            engine.Submit(changes);
            Interlocked.Add(ref owner._submitted, changes.Length);
        }
    }

    /// <summary>Commits into the in-process sink (synchronously), then hands the same replica to the plugin's sink on a task.</summary>
    private sealed class ChainedSink(NodeDataPlane owner, InMemoryReplicaSink inner) : IReplicaSink, Templates.ITemplateSink
    {
        public string Name => $"{inner.Name}+{owner._sink.Name}";

        /// <summary>
        /// The live templates go to the in-process sink, which answers for them (docs/templates.md), and to the plugin's
        /// sink when it takes them (<see cref="IReplicaTemplateSink"/>: the kernel's pickup window), after its commit.
        /// </summary>
        public void CommitTemplates(IReadOnlyList<Templates.ConnectionTemplate> templates)
        {
            inner.CommitTemplates(templates);
            owner.CommitTemplatesToPlugin(templates);
        }

        public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
        {
            // The same snapshot, not a copy: the caller hands over a replica it no longer changes (the in-process sink
            // keeps it as is), so the plugin's task reads it while the in-process sink answers from it. With a copy of
            // the 1,000,000-entry replica here the in-process commit took 3.1 s on the promotion thread (2-vCPU VM at
            // load average 26), without it 2-22 ms: the new Active announces itself that much sooner (docs/conntrack.md).
            inner.Commit(replica);
            owner.CommitToPlugin(replica);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3020, LogLevel.Information, "Data-plane plugin {Name}: member {Member} is Active, its source runs")]
        public static partial void SourceRunning(ILogger logger, string name, byte member);

        [LoggerMessage(3021, LogLevel.Information, "Data-plane plugin {Name}: source finished after {Submitted} changes")]
        public static partial void SourceFinished(ILogger logger, string name, long submitted);

        [LoggerMessage(3022, LogLevel.Error, "Data-plane plugin {Name}: source failed; the node keeps running without it")]
        public static partial void SourceFailed(ILogger logger, string name, Exception exception);

        [LoggerMessage(3023, LogLevel.Information, "Data-plane plugin {Name}: replica of {Count} connections committed into its sink in {Milliseconds:0.0} ms; the data plane serves")]
        public static partial void SinkCommitted(ILogger logger, string name, int count, double milliseconds);

        [LoggerMessage(3024, LogLevel.Error, "Data-plane plugin {Name}: its sink failed to commit {Count} connections; the in-process replica stands")]
        public static partial void SinkFailed(ILogger logger, string name, int count, Exception exception);

        [LoggerMessage(3026, LogLevel.Error, "Data-plane plugin {Name}: its sink did not finish committing {Count} connections within {Seconds} s; its source runs anyway")]
        public static partial void SinkTimedOut(ILogger logger, string name, int count, double seconds);

        [LoggerMessage(3040, LogLevel.Information, "Data-plane plugin {Name}: {Count} connection templates handed to its sink")]
        public static partial void SinkTemplatesCommitted(ILogger logger, string name, int count);

        [LoggerMessage(3041, LogLevel.Error, "Data-plane plugin {Name}: its sink failed to install {Count} connection templates; the in-process sink still answers for them")]
        public static partial void SinkTemplatesFailed(ILogger logger, string name, int count, Exception exception);

        [LoggerMessage(3042, LogLevel.Warning, "Data-plane plugin {Name}: its sink failed to release what it held in the data plane at shutdown")]
        public static partial void SinkDisposeFailed(ILogger logger, string name, Exception exception);

        [LoggerMessage(3025, LogLevel.Warning, "Data-plane plugin {Name}: its {Part} counters failed: {Reason}")]
        public static partial void CountersFailed(ILogger logger, string name, string part, string reason);
    }
}
