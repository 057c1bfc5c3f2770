using System.Diagnostics;
using System.Globalization;
using System.Net;
using ClusterSync.Connections;
using ClusterSync.DataPlane;

namespace ClusterSync.Plugins;

/// <summary>
/// Replays a trace CSV: each connection's new at its start, an update half-way (with <c>updates</c>), its destroy at
/// start + duration, in time order, <c>speed</c> trace seconds per wall-clock second from the first start. Without
/// <c>drain</c> the replay ends at the trace's last start, so the connections open then stay live. The whole trace is
/// read and ordered when the source is created (a bad line is an <see cref="ArgumentException"/> naming line and column).
/// </summary>
public sealed class TraceReplaySource : IConnectionSource, IDataPlaneStatus
{
    private const int BackpressurePending = 64 * 1024;
    private readonly TraceConnection[] _connections;
    private readonly ReplayEvent[] _events;
    private readonly double _speed;
    private readonly HashSet<ConnectionKey> _live = [];
    private long _submitted;
    private long _started;
    private long _destroyed;
    private int _liveCount;
    private int _finished;

    internal TraceReplaySource(TraceReplaySettings settings)
    {
        _speed = settings.Speed;
        _connections = TraceFile.Read(settings.Trace!);
        _events = BuildEvents(_connections, settings.Updates, settings.Drain);
    }

    /// <inheritdoc/>
    public string Name => "trace-replay";

    /// <inheritdoc/>
    public Task RunAsync(IConnectionEventSink sink, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var batch = new ConnectionEvent[256];
        var clock = Stopwatch.StartNew();
        int next = 0;
        while (next < _events.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long nowUs = (long)(clock.Elapsed.TotalMicroseconds * _speed);
            if (_events[next].TimeUs > nowUs)
            {
                double waitMs = (_events[next].TimeUs - nowUs) / 1000.0 / _speed;
                cancellationToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(Math.Clamp(waitMs, 0.5, 5)));
                continue;
            }

            if (sink.PendingCount > BackpressurePending)
            {
                cancellationToken.WaitHandle.WaitOne(1);
                continue;
            }

            int n = 0;
            while (n < batch.Length && next < _events.Length && _events[next].TimeUs <= nowUs)
            {
                ref readonly var ev = ref _events[next++];
                ref readonly var c = ref _connections[ev.Connection];
                batch[n++] = ToChange(ev.Kind, c);
                Track(ev.Kind, c.Key);
            }

            sink.Submit(batch.AsSpan(0, n));
            Interlocked.Add(ref _submitted, n);
        }

        Volatile.Write(ref _finished, 1);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, long> GetCounters() => new Dictionary<string, long>
    {
        ["trace_connections"] = _connections.Length,
        ["trace_events"] = _events.Length,
        ["events_submitted"] = Interlocked.Read(ref _submitted),
        ["connections_started"] = Interlocked.Read(ref _started),
        ["connections_destroyed"] = Interlocked.Read(ref _destroyed),
        ["live_connections"] = Volatile.Read(ref _liveCount),
        ["finished"] = Volatile.Read(ref _finished),
    };

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void Track(ConnectionEventKind kind, in ConnectionKey key)
    {
        if (kind == ConnectionEventKind.New)
        {
            Interlocked.Increment(ref _started);
            _live.Add(key);
        }
        else if (kind == ConnectionEventKind.Destroy)
        {
            Interlocked.Increment(ref _destroyed);
            _live.Remove(key);
        }

        Volatile.Write(ref _liveCount, _live.Count);
    }

    private static ConnectionEvent ToChange(ConnectionEventKind kind, in TraceConnection c)
    {
        var state = c.Key.Protocol switch
        {
            6 => kind == ConnectionEventKind.Destroy ? ProtocolState.TcpClose : ProtocolState.TcpEstablished,
            17 => kind == ConnectionEventKind.New ? ProtocolState.UdpUnreplied : ProtocolState.UdpReplied,
            1 or 58 => ProtocolState.IcmpActive,
            _ => ProtocolState.OtherActive,
        };
        uint timeout = c.Key.Protocol == 6 ? 432_000u : 180u;
        var e = ConnectionEvent.Create(kind, c.Key, state, timeout, c.StartMs);
        if (kind != ConnectionEventKind.New)
        {
            // Half the volume at the update, all of it at the end.
            ulong part = kind == ConnectionEventKind.Update ? 2u : 1u;
            e.Counters = new ConnectionCounters(c.PacketsOut / part, c.BytesOut / part, c.PacketsIn / part, c.BytesIn / part);
            e.HasCounters = true;
        }

        return e;
    }

    private static ReplayEvent[] BuildEvents(TraceConnection[] connections, bool updates, bool drain)
    {
        if (connections.Length == 0)
        {
            return [];
        }

        long first = connections.Min(c => c.StartUs);
        long horizon = connections.Max(c => c.StartUs) - first;
        var events = new List<ReplayEvent>(connections.Length * 3);
        for (int i = 0; i < connections.Length; i++)
        {
            long start = connections[i].StartUs - first;
            long end = start + connections[i].DurationUs;
            events.Add(new ReplayEvent(start, events.Count, i, ConnectionEventKind.New));
            if (updates && connections[i].DurationUs > 0 && (drain || start + (connections[i].DurationUs / 2) <= horizon))
            {
                events.Add(new ReplayEvent(start + (connections[i].DurationUs / 2), events.Count, i, ConnectionEventKind.Update));
            }

            if (drain || end <= horizon)
            {
                events.Add(new ReplayEvent(end, events.Count, i, ConnectionEventKind.Destroy));
            }
        }

        // By time; at equal times in the order made (a connection's new before its own destroy).
        events.Sort(static (a, b) => a.TimeUs != b.TimeUs ? a.TimeUs.CompareTo(b.TimeUs) : a.Sequence.CompareTo(b.Sequence));
        return [.. events];
    }

    private readonly record struct ReplayEvent(long TimeUs, int Sequence, int Connection, ConnectionEventKind Kind);
}

/// <summary>One connection of the trace.</summary>
internal readonly record struct TraceConnection(ConnectionKey Key, long StartUs, long DurationUs, ulong BytesOut, ulong BytesIn, ulong PacketsOut, ulong PacketsIn)
{
    public long StartMs => StartUs / 1000;
}

/// <summary>A reader of the trace CSV format (docs/trace-format.md), kept in the plugin so it depends on the contracts only.</summary>
internal static class TraceFile
{
    public const string Header = "start,duration,proto,src,sport,dst,dport,service,bytes_out,bytes_in,pkts_out,pkts_in";

    public static TraceConnection[] Read(string path)
    {
        var result = new List<TraceConnection>();
        bool header = false;
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            if (!header)
            {
                if (line.TrimEnd() != Header)
                {
                    throw new ArgumentException($"trace: {path}:{lineNumber}: expected the header '{Header}'");
                }

                header = true;
                continue;
            }

            var f = line.Split(',');
            if (f.Length != 12)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"trace: {path}:{lineNumber}: expected 12 fields, found {f.Length}"));
            }

            string where = string.Create(CultureInfo.InvariantCulture, $"{path}:{lineNumber}");
            double start = Number(f[0], "start", where);
            double duration = Number(f[1], "duration", where);
            byte proto = (byte)Integer(f[2], "proto", 255, where);
            var src = Address(f[3], "src", where);
            ushort sport = (ushort)Integer(f[4], "sport", 65535, where);
            var dst = Address(f[5], "dst", where);
            ushort dport = (ushort)Integer(f[6], "dport", 65535, where);
            if (src.AddressFamily != dst.AddressFamily)
            {
                throw new ArgumentException($"trace: {where}: src and dst are of different address families");
            }

            result.Add(new TraceConnection(
                ConnectionKey.Create(src, sport, dst, dport, proto),
                (long)Math.Round(start * 1e6), (long)Math.Round(duration * 1e6),
                Integer(f[8], "bytes_out", ulong.MaxValue, where), Integer(f[9], "bytes_in", ulong.MaxValue, where),
                Integer(f[10], "pkts_out", ulong.MaxValue, where), Integer(f[11], "pkts_in", ulong.MaxValue, where)));
        }

        if (!header)
        {
            throw new ArgumentException($"trace: {path}: no header line '{Header}'");
        }

        return [.. result];
    }

    private static double Number(string text, string column, string where)
        => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0 && double.IsFinite(v)
            ? v
            : throw new ArgumentException($"trace: {where}: {column}: expected a number of seconds >= 0, found '{text}'");

    private static ulong Integer(string text, string column, ulong max, string where)
        => ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v <= max
            ? v
            : throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"trace: {where}: {column}: expected an integer 0-{max}, found '{text}'"));

    /// <summary>An IP address, or <c>AS&lt;n&gt;</c> (LUFlow) mapped into 240.0.0.0/4 so that each AS has its own address.</summary>
    private static IPAddress Address(string text, string column, string where)
    {
        if (IPAddress.TryParse(text, out var a))
        {
            return a;
        }

        if (text.StartsWith("AS", StringComparison.Ordinal) && uint.TryParse(text.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var asn) && asn < (1u << 28))
        {
            uint v = 0xF000_0000u | asn;
            return new IPAddress([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
        }

        throw new ArgumentException($"trace: {where}: {column}: expected an IPv4/IPv6 address or AS<n>, found '{text}'");
    }
}
