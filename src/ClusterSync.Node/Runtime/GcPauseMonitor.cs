namespace ClusterSync.Node.Runtime;

/// <summary>
/// This process's garbage-collector pauses, for <c>/status</c> (<c>gc</c>), <c>/metrics</c> (<c>clustersync_gc_*</c>) and
/// <c>/failover</c> (<c>bench failover</c>'s per-member max pause): a timer samples the last collection of each kind
/// (<see cref="GC.GetGCMemoryInfo(GCKind)"/>: ephemeral, full blocking, background) every <see cref="SampleInterval"/>,
/// keeps the largest pause seen (with when it was seen and its generation) and the last <see cref="RecentCapacity"/>
/// pauses of at least <see cref="RecentThresholdMs"/>, each stamped with the node's clock; the total pause is the
/// runtime's own (<see cref="GC.GetTotalPauseDuration"/>, exact). Two collections of one kind inside one interval show
/// as the later one only (ephemeral ones, of a few ms; a gen2 pause of hundreds of ms is never missed).
/// </summary>
internal sealed class GcPauseMonitor : IDisposable
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(20);
    public const int RecentCapacity = 64;
    public const double RecentThresholdMs = 5;

    private static readonly GCKind[] s_kinds = [GCKind.Ephemeral, GCKind.FullBlocking, GCKind.Background];
    private readonly TimeProvider _time;
    private readonly object _sync = new();
    private readonly long[] _lastIndex = new long[3];
    private readonly GcPause[] _recent = new GcPause[RecentCapacity];
    private readonly ITimer _timer;
    private int _recentCount;
    private int _recentNext;
    private GcPause _max;

    public GcPauseMonitor(TimeProvider time)
    {
        _time = time;
        Sample();
        _timer = time.CreateTimer(static s => ((GcPauseMonitor)s!).Sample(), this, SampleInterval, SampleInterval);
    }

    /// <summary>Reads the last collection of each kind; records the ones not seen yet.</summary>
    public void Sample()
    {
        lock (_sync)
        {
            double now = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;
            for (int k = 0; k < s_kinds.Length; k++)
            {
                var info = GC.GetGCMemoryInfo(s_kinds[k]);
                if (info.Index == 0 || info.Index == _lastIndex[k])
                {
                    continue;
                }

                _lastIndex[k] = info.Index;
                double ms = 0;
                foreach (var p in info.PauseDurations)
                {
                    ms = Math.Max(ms, p.TotalMilliseconds); // a background GC pauses twice, briefly; a blocking one once
                }

                var pause = new GcPause(now, Math.Round(ms, 3), info.Generation, s_kinds[k].ToString(), info.Index);
                if (ms > _max.Ms)
                {
                    _max = pause;
                }

                if (ms >= RecentThresholdMs)
                {
                    _recent[_recentNext] = pause;
                    _recentNext = (_recentNext + 1) % RecentCapacity;
                    _recentCount = Math.Min(_recentCount + 1, RecentCapacity);
                }
            }
        }
    }

    /// <summary>The numbers so far (samples first, so a pause that just ended is in).</summary>
    public GcStatus GetStatus()
    {
        Sample();
        lock (_sync)
        {
            var recent = new List<GcPause>(_recentCount);
            for (int i = 0; i < _recentCount; i++)
            {
                recent.Add(_recent[(_recentNext - _recentCount + i + RecentCapacity) % RecentCapacity]);
            }

            return new GcStatus
            {
                MaxPauseMs = _max.Ms,
                MaxPauseUnixMs = Math.Round(_max.SeenUnixMs, 1),
                MaxPauseGeneration = _max.Generation,
                MaxPauseKind = _max.Kind ?? "",
                TotalPauseMs = Math.Round(GC.GetTotalPauseDuration().TotalMilliseconds, 3),
                Gen0Collections = GC.CollectionCount(0),
                Gen1Collections = GC.CollectionCount(1),
                Gen2Collections = GC.CollectionCount(2),
                PauseTimePercentage = GC.GetGCMemoryInfo(GCKind.Any).PauseTimePercentage,
                HeapBytes = GC.GetGCMemoryInfo(GCKind.Any).HeapSizeBytes,
                AllocatedBytes = GC.GetTotalAllocatedBytes(precise: false),
                Concurrent = System.Runtime.GCSettings.LatencyMode != System.Runtime.GCLatencyMode.Batch,
                Server = System.Runtime.GCSettings.IsServerGC,
                RecentPauses = recent,
            };
        }
    }

    public void Dispose() => _timer.Dispose();
}

/// <summary>One collection's pause: when the monitor saw it (Unix ms, the node's clock, at most one sample interval after it ended), its longest pause, generation, kind and index.</summary>
public readonly record struct GcPause(double SeenUnixMs, double Ms, int Generation, string? Kind, long Index);

/// <summary>The <c>gc</c> object of <c>/status</c> and <c>/failover</c>: this process's garbage-collector pauses (<see cref="GcPauseMonitor"/>).</summary>
public sealed record GcStatus
{
    /// <summary>The longest single pause seen since the process started (ms).</summary>
    public double MaxPauseMs { get; init; }

    /// <summary>When that pause was seen (Unix ms; 0: none yet).</summary>
    public double MaxPauseUnixMs { get; init; }

    public int MaxPauseGeneration { get; init; }

    /// <summary><c>Ephemeral</c>, <c>FullBlocking</c> or <c>Background</c>.</summary>
    public string MaxPauseKind { get; init; } = "";

    /// <summary>Every pause since the process started (ms; the runtime's own total).</summary>
    public double TotalPauseMs { get; init; }

    public int Gen0Collections { get; init; }

    public int Gen1Collections { get; init; }

    public int Gen2Collections { get; init; }

    /// <summary>The runtime's pause time percentage since the process started.</summary>
    public double PauseTimePercentage { get; init; }

    public long HeapBytes { get; init; }

    public long AllocatedBytes { get; init; }

    /// <summary>True when background (concurrent) gen2 collections are allowed.</summary>
    public bool Concurrent { get; init; }

    public bool Server { get; init; }

    /// <summary>The last pauses of at least 5 ms, oldest first (up to 64).</summary>
    public IReadOnlyList<GcPause> RecentPauses { get; init; } = [];
}
