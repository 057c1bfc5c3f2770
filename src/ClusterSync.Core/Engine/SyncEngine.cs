using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Table;
using ClusterSync.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Engine;

/// <summary>
/// One member's synchronization engine: its connection table, the policy gate, coalescing, and delta sync
/// (sender thread, receiver thread, control timer). See Protocol/README.md for the wire protocol.
/// </summary>
public delegate void AppliedHandler(in ConnectionEvent record);

public sealed partial class SyncEngine : IDisposable
{
    private readonly SyncEngineOptions _options;
    private readonly IDatagramChannel _channel;
    private readonly ClusterKey? _key;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ServiceClassCatalog _catalog;
    private readonly SyncCounters _counters = new();

    // Guarded by _tableLock: the table, the version clock, the delay queue, the active pending batch, the sweep cursor.
    private readonly object _tableLock = new();
    private readonly ConnectionTable _table;
    private readonly VersionClock _clock = new();
    private readonly PriorityQueue<(ConnectionKey Key, long CreatedMs), long> _delayed = new();
    private int[] _pendingSlots = new int[4096];   // slots whose entry carries the Pending bit (producer appends)
    private int _pendingCount;
    private int[] _drainingSlots = new int[4096];  // the list the sender is draining
    private int _sweepCursor;

    private readonly PeerState?[] _peersById = new PeerState?[256];
    private readonly PeerState[] _peers;
    private readonly CancellationTokenSource _stop = new();
    private Thread? _senderThread;
    private Thread? _receiverThread;
    private ITimer? _timer;
    private Thread? _controlThread;
    private int _started;
    private long _lastSendOkTimestamp;     // written only while a send failure is on record
    private long _lastSendFailedTimestamp; // 0: no send has failed
    private long _sendFailingSince;        // first failure of the current run of failures
    private int _disposed;
    private volatile bool _crashing;

    public SyncEngine(SyncEngineOptions options, IDatagramChannel channel, ClusterKey? key, TimeProvider? time = null,
        ILogger? logger = null, IConnectionClassifier? classifier = null)
    {
        var errors = options.Validate("sync").ToList();
        if (key is null && !options.Insecure)
        {
            errors.Add("sync.keyFile: a cluster key is required unless 'insecure: true' is set explicitly");
        }

        if (channel.PeerCount != options.PeerMemberIds.Count)
        {
            errors.Add($"sync.peers: the transport has {channel.PeerCount} peers but {options.PeerMemberIds.Count} member ids are configured");
        }

        if (options.Mtu > channel.MaxDatagramSize)
        {
            errors.Add($"sync.mtu: {options.Mtu} exceeds what the transport carries ({channel.MaxDatagramSize})");
        }

        if (errors.Count > 0)
        {
            throw ConfigurationErrors.All(errors);
        }

        _options = options;
        _channel = channel;
        _key = options.Insecure ? null : key;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _catalog = new ServiceClassCatalog(options.Policy, classifier, _time);
        _table = new ConnectionTable(options.TableCapacity);
        Epoch = options.Epoch != 0 ? options.Epoch : NewEpoch(_time.GetUtcNow().ToUnixTimeMilliseconds(), options.PreviousEpoch);
        _peers = new PeerState[options.PeerMemberIds.Count];
        for (int i = 0; i < _peers.Length; i++)
        {
            _peers[i] = new PeerState(options.PeerMemberIds[i], i) { LastResent = new long[options.ResendBufferDatagrams] };
            _peersById[options.PeerMemberIds[i]] = _peers[i];
        }

        _resend = new Reliability.ResendBuffer(options.ResendBufferDatagrams, options.Mtu);
        _sentAt = new long[options.ResendBufferDatagrams];
        _batchSender = options.BatchSends ? channel as IDatagramBatchSender : null;
        _outgoing = new ReadOnlyMemory<byte>[Math.Clamp(options.ResendBufferDatagrams / 2, 1, 64)];
        _dataSealer = PacketProtection.Create(_key, options.MemberId, Epoch);
        _controlSealer = PacketProtection.Create(_key, options.MemberId, Epoch);
        InitLinks(channel);
        _dropCounts = channel as IReceiveDropCounts;
        _foldedEmpty = _dropCounts?.EmptyDatagrams ?? 0;
        _foldedOversize = _dropCounts?.OversizeDatagrams ?? 0;
        InitTemplates();
    }

    public byte MemberId => _options.MemberId;

    /// <summary>This life of the member; part of every nonce and of the key derivation.</summary>
    public ulong Epoch { get; }

    /// <summary>A new life's epoch: the wall clock in Unix ms, but always newer than the previous life's (a clock stepped back).</summary>
    internal static ulong NewEpoch(long nowMs, ulong previousEpoch)
        => Math.Max((ulong)Math.Max(1, nowMs), previousEpoch == ulong.MaxValue ? previousEpoch : previousEpoch + 1);

    public SyncCounters Counters => _counters;

    public ServiceClassCatalog Catalog => _catalog;

    public SyncEngineOptions Options => _options;

    /// <summary>
    /// Raised on the receiver thread, outside the engine's locks, when a gap from a peer can no longer be repaired:
    /// a full sync is needed. Handlers should hand the work off rather than block the receiver.
    /// </summary>
    public event Action<byte, ulong>? ResyncNeeded;

    /// <summary>Observes every record applied from a peer (receiver thread; must be cheap). For benchmarks and the data-plane mirror.</summary>
    public AppliedHandler? AppliedObserver { get; set; }

    /// <summary>
    /// While an <see cref="AppliedObserver"/> is set: the <see cref="TimeProvider"/> timestamp taken once per group of
    /// received records applied together (the records of one or more consecutive Data datagrams, at most 320), just
    /// before the group is applied, so an observer that times applies reads it instead of the clock for every record.
    /// 0 before the first group.
    /// </summary>
    public long AppliedGroupTimestamp { get; private set; }

    /// <summary>Kernel thread ids of the sender and receiver threads (0 until started), for CPU accounting.</summary>
    public int SenderThreadId { get; private set; }

    public int ReceiverThreadId { get; private set; }

    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The engine is already started.");
        }

        if (_key is null)
        {
            Log.InsecureMode(_logger, MemberId);
        }

        _startedTimestamp = _time.GetTimestamp();
        Log.Started(_logger, MemberId, Epoch, _peers.Length, _options.Mtu, _key is not null);
        Log.TransportPath(_logger, MemberId, TransportPath);
        _offloadApply = true; // the receiver hands records to the apply thread rather than wait for the table lock
        _senderThread = SyncThread(SenderLoop, "sender", $"cs-send-{MemberId}");
        _receiverThread = SyncThread(ReceiverLoop, "receiver", $"cs-recv-{MemberId}");
        // With several sync links each link has a receive thread of its own (MultiLinkChannel): they are receivers too and
        // take the same scheduling, or a real-time receiver would wait on an ordinary thread for every datagram.
        _multi?.StartReceiving(link => Scheduling.SyncThreadScheduling.ApplyAndLog(_options.Scheduler, _logger, MemberId, $"link {link} receiver"));
        _senderThread.Start();
        _receiverThread.Start();
        _inlineReady = _options.InlineSend; // from now on a submit may send itself while the sender thread is idle
        if (ReferenceEquals(_time, TimeProvider.System))
        {
            // The control tick (heartbeats, acks, the election) gets its own thread: on a busy machine thread-pool
            // timers can lag by hundreds of milliseconds, and a late heartbeat is a false failover.
            // It takes the sync threads' scheduling too: it holds the table lock for every tick's sweep, and a real-time
            // sender or receiver blocked on a lock held by a preempted ordinary thread waits as long as that thread does.
            // The heartbeat thread exists before the control thread starts: a tick that saw no heartbeat thread would
            // send heartbeats itself (the test-clock path), a second one at start on a loaded machine.
            _heartbeatThread = SyncThread(HeartbeatLoop, "heartbeat", $"cs-hb-{MemberId}");
            _controlThread = SyncThread(ControlLoop, "control", $"cs-ctl-{MemberId}");
            _heartbeatThread.Start(); // heartbeats on a thread of their own (SyncEngine.Heartbeat.cs)
            _controlThread.Start();
        }
        else
        {
            // A test clock drives the tick through its timers.
            _timer = _time.CreateTimer(_ => OnTick(), null, _options.AckInterval, _options.AckInterval);
        }
    }

    /// <summary>
    /// A sync thread (sender, receiver, heartbeat, control tick; a multi-link channel's link receive threads take the same
    /// setting, see <see cref="Start"/>): a dedicated background thread that first takes the configured
    /// scheduling (<see cref="SyncEngineOptions.Scheduler"/>: a nice value or a real-time policy; logged, 1170/1171).
    /// </summary>
    private Thread SyncThread(Action loop, string role, string name) => new(() =>
    {
        Scheduling.SyncThreadScheduling.ApplyAndLog(_options.Scheduler, _logger, MemberId, role);
        loop();
    })
    { IsBackground = true, Name = name };

    // ------------------------------------------------------------------ table access

    /// <summary>Connections in the table (tombstones excluded). Allocates: for tests, snapshots and status.</summary>
    public List<KeyValuePair<ConnectionKey, ConnectionEntry>> SnapshotTable(bool includeTombstones = false)
    {
        lock (_tableLock)
        {
            return _table.ToList(includeTombstones);
        }
    }

    public bool TryGetEntry(in ConnectionKey key, out ConnectionEntry entry)
    {
        lock (_tableLock)
        {
            ref var e = ref _table.Find(key);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref e))
            {
                entry = default;
                return false;
            }

            entry = _table.Read(key, e);
            return true;
        }
    }

    /// <summary>Entries in the table, tombstones of destroyed connections included (see <c>LiveConnectionCount</c>).</summary>
    public int TableCount
    {
        get
        {
            lock (_tableLock)
            {
                return _table.Count;
            }
        }
    }

    public long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    // ------------------------------------------------------------------ lifecycle

    /// <summary>Stops as a killed process would: no Down heartbeat (tests that stand in for SIGKILL).</summary>
    internal void Crash()
    {
        _crashing = true;
        Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _catalog.Dispose();
        _timer?.Dispose();
        _controlThread?.Join(TimeSpan.FromSeconds(5));
        _heartbeatThread?.Join(TimeSpan.FromSeconds(5));
        if (Volatile.Read(ref _started) == 1 && !_crashing)
        {
            SendFarewell();
        }

        SignalSender();
        _channel.Dispose();
        _senderThread?.Join(TimeSpan.FromSeconds(5));
        _receiverThread?.Join(TimeSpan.FromSeconds(5));
        _applyThread?.Join(TimeSpan.FromSeconds(5)); // started by the receiver thread, if ever
        lock (_sendLock)
        {
            _dataSealer.Dispose(); // not under an inline send of a data-plane thread (SyncEngine.Sender.cs)
        }

        _controlSealer.Dispose();
        foreach (var p in _peers)
        {
            p.Dispose();
        }

        _stop.Dispose();
        _heartbeatWake.Dispose();
        if (_applyThread is null || !_applyThread.IsAlive)
        {
            _backlogWake.Dispose();
            _backlogIdle.Dispose();
        }
        Log.Stopped(_logger, MemberId);
    }

    private static long Elapsed(long fromTimestamp, long toTimestamp, TimeProvider time)
        => (long)((toTimestamp - fromTimestamp) * (1000.0 / time.TimestampFrequency));
}
