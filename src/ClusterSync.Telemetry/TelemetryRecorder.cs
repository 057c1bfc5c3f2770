using ClusterSync.Connections;
using ClusterSync.Policy;
using LiteDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Telemetry;

/// <summary>
/// What the engine (and the adaptive controller) report at each metrics interval; cumulative counters. The template
/// fields (docs/templates.md): templates live now, connections covered and template records sent (cumulative).
/// </summary>
public readonly record struct EngineSample(
    long UpdatesSent,
    long BytesSent,
    long Retransmissions,
    long NackRangesSent,
    long NackRangesReceived,
    long Pending,
    long LagDatagrams,
    int AtRiskConnections,
    double AtRiskExposureSeconds,
    double RealizedLoss,
    double Price,
    int TemplatesLive = 0,
    long TemplateCovered = 0,
    long TemplateRecordsSent = 0);

/// <summary>
/// Telemetry capture into LiteDB. The engine hands each ended connection to <see cref="OnEnded"/> (under its table
/// lock): per-class sums are updated for every connection, and a sampled connection's outcome is copied into a
/// bounded ring — nothing else happens on the sync path. A writer thread drains the ring every flush interval into
/// segment documents (up to <c>segmentRecords</c> fixed-size records in one binary field, so one LiteDB insert
/// carries thousands of connections), writes a metrics document every metrics interval, and enforces the size cap by
/// deleting the oldest segments (LiteDB reuses the freed pages, so the file stops growing near the cap).
/// Collections: <c>runs</c> (one per start: member, classes, never-skip classes), <c>lifecycle</c> (segments),
/// <c>metrics</c>.
/// </summary>
public sealed partial class TelemetryRecorder : IConnectionOutcomeSink, IDisposable
{
    public const string RunsCollection = "runs";
    public const string LifecycleCollection = "lifecycle";
    public const string MetricsCollection = "metrics";

    private readonly TelemetryOptions _options;
    private readonly string _path;
    private readonly LiteDatabase _db;
    private readonly ILiteCollection<BsonDocument> _lifecycle;
    private readonly ILiteCollection<BsonDocument> _metrics;
    private readonly long _runId;
    private readonly IReadOnlyList<ServiceClassDefinition> _classes;
    private readonly Func<string>? _decisionSource;
    private readonly Func<EngineSample>? _engineSample;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly OutcomeRing _ring;
    private readonly ulong _sampleBelow;
    private readonly Thread _writer;
    private readonly ManualResetEventSlim _stop = new();

    // Per-class sums of every ended connection (engine thread writes, writer thread reads).
    private readonly long[] _classConnections = new long[256];
    private readonly long[] _classSynced = new long[256];
    private readonly long[] _classMessages = new long[256];
    private readonly long[] _classExposureMs = new long[256];
    private long _ended;

    private const long BytesPerRecordOnDisk = 112;
    private long _written;
    private long _held; // lifecycle records in the file (writer thread)
    private long _segments;
    private long _segmentsDeleted;
    private long _writeFailures;
    private EngineSample _lastSample;
    private long[] _lastConnections = new long[256];
    private long[] _lastSynced = new long[256];
    private long[] _lastMessages = new long[256];
    private long[] _lastExposureMs = new long[256];
    private long _lastMetricsTimestamp;
    private int _disposed;

    public TelemetryRecorder(TelemetryOptions options, byte memberId, IReadOnlyList<ServiceClassDefinition> classes,
        IReadOnlyCollection<string>? neverSkip = null, Func<string>? decisionSource = null, Func<EngineSample>? engineSample = null,
        TimeProvider? time = null, ILogger? logger = null)
        : this(options, memberId, classes, neverSkip, decisionSource, engineSample, time, logger, stream: null)
    {
    }

    /// <summary>For tests: the database on <paramref name="stream"/> instead of the file (a stream that fails as a full disk does).</summary>
    internal TelemetryRecorder(TelemetryOptions options, byte memberId, IReadOnlyList<ServiceClassDefinition> classes,
        IReadOnlyCollection<string>? neverSkip, Func<string>? decisionSource, Func<EngineSample>? engineSample,
        TimeProvider? time, ILogger? logger, Stream? stream)
    {
        var errors = options.Validate("telemetry").ToList();
        if (errors.Count > 0)
        {
            throw ConfigurationErrors.All(errors);
        }

        _options = options;
        _path = System.IO.Path.GetFullPath(options.Path);
        _classes = classes;
        _decisionSource = decisionSource;
        _engineSample = engineSample;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _ring = new OutcomeRing(options.QueueCapacity);
        _sampleBelow = options.SampleRate >= 1 ? ulong.MaxValue : (ulong)(options.SampleRate * ulong.MaxValue);
        var dir = System.IO.Path.GetDirectoryName(_path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        LiteDatabase? db = null;
        try
        {
            if (stream is null)
            {
                CheckHeader(_path);
            }

            db = stream is null
                ? new LiteDatabase(new ConnectionString { Filename = _path, Connection = ConnectionType.Direct })
                : new LiteDatabase(stream);
            _lifecycle = db.GetCollection(LifecycleCollection, BsonAutoId.Int64);
            _lifecycle.EnsureIndex("from");
            _held = _lifecycle.FindAll().Sum(d => (long)d["count"].AsInt32); // records kept from earlier runs count against the cap
            _metrics = db.GetCollection(MetricsCollection, BsonAutoId.Int64);
            _metrics.EnsureIndex("time");
            var runs = db.GetCollection(RunsCollection, BsonAutoId.Int64);
            _runId = runs.Insert(new BsonDocument
            {
                ["member"] = (int)memberId,
                ["startedMs"] = _time.GetUtcNow().ToUnixTimeMilliseconds(),
                ["format"] = LifecycleCodec.Version,
                ["sampleRate"] = options.SampleRate,
                ["classes"] = new BsonArray(classes.Select(c => new BsonValue(c.Name))),
                ["classPolicies"] = new BsonArray(classes.Select(c => new BsonValue(c.Policy.ToString()))),
                ["neverSkip"] = new BsonArray((neverSkip ?? []).Select(n => new BsonValue(n))),
            }).AsInt64;
            _db = db;
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException))
        {
            // A damaged file fails anywhere in LiteDB (open, index, first read or write) with any exception type.
            try
            {
                db?.Dispose();
            }
            catch (Exception)
            {
                // Disposing a half-opened damaged file may fail too; the message below is what matters.
            }

            throw ConfigurationErrors.At("telemetry.path", ex is UnauthorizedAccessException
                ? $"cannot open '{_path}': {ex.Message}"
                : $"'{_path}' is not a usable telemetry (LiteDB) file, damaged or truncated? ({ex.GetType().Name}: {ex.Message}); " +
                  $"move it aside (mv '{_path}' '{_path}.damaged') to start a new one, or set telemetry.path to another file");
        }

        _lastMetricsTimestamp = _time.GetTimestamp();
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "cs-telemetry", Priority = ThreadPriority.BelowNormal };
        _writer.Start();
    }

    /// <summary>
    /// LiteDB takes a short non-empty file for a new one and overwrites it; anything there that is not a LiteDB file
    /// (shorter than one 8 KiB page, or without LiteDB's header text at byte 32) is refused instead.
    /// </summary>
    private static void CheckHeader(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length == 0)
        {
            return;
        }

        if (info.Length < PageSize)
        {
            throw new InvalidDataException($"{info.Length} bytes, shorter than one {PageSize}-byte LiteDB page");
        }

        Span<byte> head = stackalloc byte[HeaderOffset + HeaderText.Length];
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1))
        {
            file.ReadExactly(head);
        }

        if (!head[HeaderOffset..].SequenceEqual(HeaderText))
        {
            throw new InvalidDataException("no LiteDB header");
        }
    }

    private const int PageSize = 8192;
    private const int HeaderOffset = 32;
    private static ReadOnlySpan<byte> HeaderText => "** This is a LiteDB file **"u8;

    public string FilePath => _path;

    /// <summary>Outcomes copied for writing (sampled).</summary>
    public long Captured => Volatile.Read(ref _written) + _ring.Count;

    /// <summary>Lifecycle records written to the file.</summary>
    public long Written => Volatile.Read(ref _written);

    /// <summary>Sampled outcomes dropped because the ring was full (the writer fell behind).</summary>
    public long Dropped => _ring.Dropped;

    public long Ended => Volatile.Read(ref _ended);

    public long Segments => Volatile.Read(ref _segments);

    public long SegmentsDeleted => Volatile.Read(ref _segmentsDeleted);

    public long WriteFailures => Volatile.Read(ref _writeFailures);

    public void OnEnded(in ConnectionOutcome outcome)
    {
        byte c = outcome.ServiceClass;
        _classConnections[c]++;
        _classMessages[c] += outcome.Messages;
        _classExposureMs[c] += outcome.ExposureMs;
        if (outcome.Synced)
        {
            _classSynced[c]++;
        }

        Volatile.Write(ref _ended, _ended + 1);
        if (_sampleBelow == ulong.MaxValue || outcome.Key.Hash64(0x7E1E) < _sampleBelow)
        {
            _ring.TryWrite(outcome);
        }
    }

    /// <summary>
    /// Writes what this recorder has stored so far as CSV (<paramref name="trace"/>: the trace format `train` and
    /// `simulate` read; otherwise every lifecycle field), from the database it writes — a consistent export of a
    /// running node (copying its file while the writer works can tear it). Records still in the in-memory ring
    /// (at most one flush interval old) are not in it yet. Returns how many lifecycles were written.
    /// </summary>
    public long Export(TextWriter w, bool trace)
    {
        using var reader = new TelemetryReader(_db);
        return trace ? reader.ExportTrace(w) : reader.ExportLifecycles(w);
    }

    /// <summary>Kernel thread id of the writer thread (for CPU accounting in benchmarks); 0 until it runs.</summary>
    public int WriterThreadId { get; private set; }

    private void WriterLoop()
    {
        WriterThreadId = ClusterSync.Engine.ThreadCpu.CurrentThreadId();
        var buffer = new ConnectionOutcome[_options.SegmentRecords];
        var bytes = new byte[_options.SegmentRecords * LifecycleCodec.Size];
        bool stopping = false;
        while (!stopping)
        {
            stopping = _stop.Wait(_options.FlushInterval);
            try
            {
                DrainSegments(buffer, bytes);
                if (stopping || _time.GetElapsedTime(_lastMetricsTimestamp) >= _options.MetricsInterval)
                {
                    WriteMetrics();
                }

                EnforceCap();
            }
            catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException))
            {
                // A full disk, a damaged page, or LiteDB left in a bad state by an earlier failure (it then throws
                // LockRecursionException and the like): counted, warned about at most once a minute, never fatal.
                OnWriteFailed(ex);
            }
        }

        try
        {
            _db.Checkpoint();
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException))
        {
            OnWriteFailed(ex);
        }
    }

    /// <summary>Shortest time between two write-failure warnings.</summary>
    public static readonly TimeSpan WarningInterval = TimeSpan.FromMinutes(1);

    private long _lastWarningTimestamp;
    private long _failuresAtLastWarning;

    private void OnWriteFailed(Exception ex)
    {
        long failures = Interlocked.Increment(ref _writeFailures);
        long now = _time.GetTimestamp();
        if (failures == 1 || _time.GetElapsedTime(_lastWarningTimestamp, now) >= WarningInterval)
        {
            LogWriteFailed(_logger, _path, ex.GetType().Name, ex.Message, failures - _failuresAtLastWarning, failures);
            _lastWarningTimestamp = now;
            _failuresAtLastWarning = failures;
        }
    }

    private void DrainSegments(ConnectionOutcome[] buffer, byte[] bytes)
    {
        while (true)
        {
            int n = _ring.Drain(buffer);
            if (n == 0)
            {
                return;
            }

            long from = long.MaxValue;
            long to = 0;
            for (int i = 0; i < n; i++)
            {
                LifecycleCodec.Write(bytes.AsSpan(i * LifecycleCodec.Size, LifecycleCodec.Size), buffer[i]);
                from = Math.Min(from, buffer[i].EndedMs);
                to = Math.Max(to, buffer[i].EndedMs);
            }

            _lifecycle.Insert(new BsonDocument
            {
                ["run"] = _runId,
                ["from"] = from,
                ["to"] = to,
                ["count"] = n,
                ["source"] = _decisionSource?.Invoke() ?? "static",
                ["data"] = bytes.AsSpan(0, n * LifecycleCodec.Size).ToArray(),
            });
            _held += n;
            Volatile.Write(ref _segments, _segments + 1);
            Volatile.Write(ref _written, _written + n);
            if (n < buffer.Length)
            {
                return;
            }
        }
    }

    private void WriteMetrics()
    {
        long now = _time.GetTimestamp();
        double seconds = Math.Max(1e-3, _time.GetElapsedTime(_lastMetricsTimestamp, now).TotalSeconds);
        _lastMetricsTimestamp = now;
        var sample = _engineSample?.Invoke() ?? default;
        long updates = sample.UpdatesSent - _lastSample.UpdatesSent;
        long bytes = sample.BytesSent - _lastSample.BytesSent;
        double bytesPerRecord = updates > 0 ? (double)bytes / updates : 0;
        var classes = new BsonArray();
        var connections = (long[])_classConnections.Clone();
        var synced = (long[])_classSynced.Clone();
        var messages = (long[])_classMessages.Clone();
        var exposure = (long[])_classExposureMs.Clone();
        for (int c = 0; c < _classes.Count; c++)
        {
            long m = messages[c] - _lastMessages[c];
            classes.Add(new BsonDocument
            {
                ["class"] = _classes[c].Name,
                ["connections"] = connections[c] - _lastConnections[c],
                ["synced"] = synced[c] - _lastSynced[c],
                ["messages"] = m,
                ["bytes"] = Math.Round(m * bytesPerRecord),
                ["exposureSeconds"] = (exposure[c] - _lastExposureMs[c]) / 1000.0,
            });
        }

        _metrics.Insert(new BsonDocument
        {
            ["run"] = _runId,
            ["time"] = _time.GetUtcNow().ToUnixTimeMilliseconds(),
            ["seconds"] = seconds,
            ["updatesSent"] = updates,
            ["bytesSent"] = bytes,
            ["retransmissions"] = sample.Retransmissions - _lastSample.Retransmissions,
            ["nackRangesSent"] = sample.NackRangesSent - _lastSample.NackRangesSent,
            ["nackRangesReceived"] = sample.NackRangesReceived - _lastSample.NackRangesReceived,
            ["pending"] = sample.Pending,
            ["lagDatagrams"] = sample.LagDatagrams,
            ["atRiskConnections"] = sample.AtRiskConnections,
            ["atRiskExposureSeconds"] = sample.AtRiskExposureSeconds,
            ["realizedLoss"] = double.IsNaN(sample.RealizedLoss) ? BsonValue.Null : sample.RealizedLoss,
            ["price"] = sample.Price,
            ["captureDropped"] = _ring.Dropped,
            ["templatesLive"] = sample.TemplatesLive,
            ["templateCovered"] = sample.TemplateCovered - _lastSample.TemplateCovered,
            ["templateRecordsSent"] = sample.TemplateRecordsSent - _lastSample.TemplateRecordsSent,
            ["classes"] = classes,
        });
        _lastSample = sample;
        (_lastConnections, _lastSynced, _lastMessages, _lastExposureMs) = (connections, synced, messages, exposure);
    }

    /// <summary>
    /// Retention by volume: the lifecycle records held may take up to the cap (at ~112 bytes each, record and page
    /// overhead); past it, the oldest segments are deleted until 90% of that is left. LiteDB reuses the freed pages,
    /// so the file stops growing near the cap (it never shrinks on its own).
    /// </summary>
    private void EnforceCap()
    {
        long maxRecords = _options.MaxSizeMegabytes * 1024 * 1024 / BytesPerRecordOnDisk;
        if (_held <= maxRecords)
        {
            return;
        }

        long excess = _held - (maxRecords * 9 / 10);
        long lastId = 0;
        long freed = 0;
        foreach (var seg in _lifecycle.Find(Query.All("_id", Query.Ascending)))
        {
            lastId = seg["_id"].AsInt64;
            freed += seg["count"].AsInt32;
            if (freed >= excess)
            {
                break;
            }
        }

        int deleted = _lifecycle.DeleteMany(Query.LTE("_id", lastId));
        _held -= freed;
        _segmentsDeleted += deleted;
        _db.Checkpoint();
        LogRetention(_logger, deleted, _path, _options.MaxSizeMegabytes);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Set();
        _writer.Join(TimeSpan.FromSeconds(30));
        try
        {
            _db.Dispose();
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException))
        {
            // Whatever state a failed disk left LiteDB in, stopping the node must not fail on it.
            OnWriteFailed(ex);
        }

        _stop.Dispose();
    }

    [LoggerMessage(5101, LogLevel.Warning, "Telemetry write to {Path} failed: {Kind}: {Reason} ({Since} failures since the last warning, {Failures} in all; telemetry.writeFailures in /status; at most one warning a minute)")]
    private static partial void LogWriteFailed(ILogger logger, string path, string kind, string reason, long since, long failures);

    [LoggerMessage(5102, LogLevel.Information, "Telemetry retention: {Segments} oldest segments deleted from {Path} (cap {CapMb} MB)")]
    private static partial void LogRetention(ILogger logger, int segments, string path, long capMb);
}
