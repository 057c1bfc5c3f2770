using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ClusterSync.Connections;
using ClusterSync.Node.DataPlanes;
using ClusterSync.Policy;
using ClusterSync.Protocol;
using ClusterSync.Workload;

namespace ClusterSync.Cli.Demo;

/// <summary>The instant of the kill, as the data plane saw it.</summary>
/// <param name="Alive">Connections alive in the Active's data plane (key → service class name).</param>
/// <param name="UnixMs">This machine's clock just before the SIGKILL.</param>
/// <param name="ChangesFed">Changes the data plane had produced.</param>
/// <param name="RecentRate">Changes per second over the last second before the kill.</param>
/// <param name="Static3s">What a static 3 s delay would have cost for the same changes (counted offline, see <see cref="StaticDelayCount"/>).</param>
internal sealed record KillPoint(IReadOnlyDictionary<ConnectionKey, string> Alive, double UnixMs, long ChangesFed, double RecentRate, StaticDelayCount Static3s);

/// <summary>
/// A static delay counted offline from the changes the data plane produced, one message per change as sync-all is
/// counted (its cost is the number of changes): a connection costs nothing until it has lived the delay; then one
/// message announces it, and every later update and its destroy cost one each. Exposed: connections alive at the kill
/// that had not yet lived the delay (not replicated under that policy).
/// </summary>
internal sealed record StaticDelayCount(double DelaySeconds, long Messages, int Exposed);

/// <summary>
/// The demo's data plane: drives <see cref="ChangeGenerator"/> at a rate and streams the changes into the Active's
/// <see cref="DataPlaneFeed"/>, keeping the set of connections alive (the ground truth a kernel table would hold).
/// Each batch is generated, recorded and written under one lock, so <see cref="StopAndKill"/> lands between two
/// batches and the alive set at the kill is exact.
/// </summary>
internal sealed class FeedWriter : IDisposable
{
    private const int MaxBatch = 512;
    private readonly int _port;
    private readonly ChangeGenerator _generator;
    private readonly ServiceClassCatalog _catalog;
    private double _rate;
    private long _rateFrom;
    private long _rateStartTicks;
    private readonly object _lock = new();
    private readonly Dictionary<ConnectionKey, string> _alive = [];
    private readonly Dictionary<ConnectionKey, long> _createdMs = [];
    private const long StaticDelayMs = 3000;
    private long _staticMessages;
    private readonly List<(long Ticks, long Fed)> _samples = [];
    private Socket? _socket;
    private Thread? _thread;
    private bool _stopped;
    private long _fed;
    private Exception? _failure;

    private readonly Func<Socket>? _createSocket;

    /// <param name="createSocket">Creates the TCP socket to the feed (null: one in this process's network namespace).</param>
    public FeedWriter(int port, ChangeGenerator generator, ServiceClassCatalog catalog, double rate, Func<Socket>? createSocket = null)
    {
        _createSocket = createSocket;
        _port = port;
        _generator = generator;
        _catalog = catalog;
        _rate = rate;
    }

    public long Fed => Interlocked.Read(ref _fed);

    /// <summary>From now on, offer <paramref name="rate"/> changes per second (no catching up on the old rate).</summary>
    public void SetRate(double rate)
    {
        lock (_lock)
        {
            _rate = rate;
            _rateFrom = _fed;
            _rateStartTicks = Stopwatch.GetTimestamp();
        }
    }

    public void Start()
    {
        _socket = _createSocket?.Invoke() ?? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _socket.NoDelay = true;
        _socket.Connect(new IPEndPoint(IPAddress.Loopback, _port));
        _thread = new Thread(Run) { IsBackground = true, Name = "demo-data-plane" };
        _thread.Start();
    }

    public void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } f)
        {
            throw new DemoException($"the data plane feed failed: {f.Message}");
        }
    }

    /// <summary>Stops the data plane between two batches and SIGKILLs <paramref name="active"/> at that instant.</summary>
    public KillPoint StopAndKill(ChildProcess active)
    {
        lock (_lock)
        {
            _stopped = true;
            ThrowIfFailed();
            double rate = RecentRate(Stopwatch.GetTimestamp());
            double at = FailoverWitness.UnixMs(TimeProvider.System);
            active.Kill();
            long nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            int exposed = 0;
            long announced = 0;
            foreach (var created in _createdMs.Values)
            {
                if (nowMs - created >= StaticDelayMs)
                {
                    announced++;
                }
                else
                {
                    exposed++;
                }
            }

            return new KillPoint(new Dictionary<ConnectionKey, string>(_alive), at, _fed, rate,
                new StaticDelayCount(StaticDelayMs / 1000.0, _staticMessages + announced, exposed));
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
        }

        _thread?.Join(TimeSpan.FromSeconds(5));
        _socket?.Dispose();
    }

    private void Run()
    {
        var batch = new ConnectionEvent[MaxBatch];
        var frame = new byte[4 + (MaxBatch * RecordCodec.MaxRecordSize)];
        lock (_lock)
        {
            _rateStartTicks = Stopwatch.GetTimestamp();
        }

        try
        {
            while (true)
            {
                long target, fed;
                lock (_lock)
                {
                    target = _rateFrom + (long)(_rate * Stopwatch.GetElapsedTime(_rateStartTicks).TotalSeconds);
                    fed = _fed;
                    long lag = (long)(_rate * 0.05);
                    if (target - fed > lag)
                    {
                        // Stalled (the node applied backpressure, or this thread was not scheduled): no burst to
                        // catch up beyond 50 ms of changes, so the rate stays what was asked for.
                        _rateFrom -= target - fed - lag;
                        target = fed + lag;
                    }
                }

                if (target <= fed)
                {
                    Thread.Sleep(1);
                    continue;
                }

                int n = (int)Math.Min(MaxBatch, target - fed);
                lock (_lock)
                {
                    if (_stopped)
                    {
                        return;
                    }

                    long nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    for (int i = 0; i < n; i++)
                    {
                        _generator.Next(ref batch[i], nowMs);
                        ref readonly var e = ref batch[i];
                        if (e.Kind == ConnectionEventKind.New)
                        {
                            _alive[e.Key] = _catalog.NameOf(_catalog.Classify(e.Key));
                            _createdMs[e.Key] = nowMs;
                        }
                        else if (_createdMs.TryGetValue(e.Key, out long created) && nowMs - created >= StaticDelayMs)
                        {
                            // Static 3 s: an update or destroy of a connection past its delay costs one message; the
                            // destroy also pays its announcement (alive ones pay it at the kill).
                            _staticMessages += e.Kind == ConnectionEventKind.Destroy ? 2 : 1;
                        }

                        if (e.Kind == ConnectionEventKind.Destroy)
                        {
                            _alive.Remove(e.Key);
                            _createdMs.Remove(e.Key);
                        }
                    }

                    int length = RecordStream.EncodeFrame(batch.AsSpan(0, n), frame);
                    _socket!.Send(frame.AsSpan(0, length));
                    Interlocked.Add(ref _fed, n);
                    Sample(Stopwatch.GetTimestamp(), _fed);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            lock (_lock)
            {
                if (!_stopped)
                {
                    Volatile.Write(ref _failure, ex);
                }
            }
        }
    }

    // Samples every 50 ms; the oldest kept is the newest one at least a second old.
    private void Sample(long ticks, long fed)
    {
        if (_samples.Count == 0 || ticks - _samples[^1].Ticks > Stopwatch.Frequency / 20)
        {
            _samples.Add((ticks, fed));
        }

        while (_samples.Count > 1 && ticks - _samples[1].Ticks >= Stopwatch.Frequency)
        {
            _samples.RemoveAt(0);
        }
    }

    /// <summary>Changes per second from the newest sample at least a second old up to <paramref name="now"/> (a stall counts).</summary>
    private double RecentRate(long now)
    {
        if (_samples.Count == 0)
        {
            return 0;
        }

        var from = _samples[0];
        double seconds = (double)(now - from.Ticks) / Stopwatch.Frequency;
        return seconds > 0 ? (_fed - from.Fed) / seconds : 0;
    }
}
