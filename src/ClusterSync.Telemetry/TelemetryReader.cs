using System.Globalization;
using System.Text;
using ClusterSync.Connections;
using LiteDB;

namespace ClusterSync.Telemetry;

/// <summary>Reads a telemetry file (lifecycle records decoded from their segments, metrics) and exports CSV.</summary>
public sealed class TelemetryReader : IDisposable
{
    /// <summary>The lifecycle CSV columns, in order (documented in README "Adaptive mode at run time / telemetry").</summary>
    public const string LifecycleHeader =
        "member,start_ms,end_ms,lifetime_s,family,protocol,src,sport,dst,dport,zone,class,decision,delay_s,score,reason,synced,messages,end_reason,final_state,has_counters,orig_packets,orig_bytes,reply_packets,reply_bytes";

    public const string MetricsHeader =
        "time_ms,seconds,class,connections,synced,messages,bytes,exposure_s,updates_sent,bytes_sent,retransmissions,nack_ranges_sent,nack_ranges_received,pending,lag_datagrams,at_risk_connections,at_risk_exposure_s,realized_loss,price,capture_dropped";

    private readonly LiteDatabase _db;
    private readonly bool _ownsDb = true;
    private readonly Dictionary<long, Run> _runs = [];

    private sealed record Run(byte Member, string[] Classes, HashSet<string> NeverSkip);

    public TelemetryReader(string path)
    {
        if (!File.Exists(path))
        {
            throw ConfigurationErrors.InFile(path, "no such telemetry file");
        }

        try
        {
            _db = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct, ReadOnly = true });
            LoadRuns();
        }
        catch (Exception ex) when (ex is LiteException or IOException or InvalidCastException or KeyNotFoundException or NotSupportedException or FormatException or InvalidDataException)
        {
            _db?.Dispose();
            throw ConfigurationErrors.InFile(path, $"not a ClusterSync telemetry file ({ex.Message})");
        }
    }

    /// <summary>
    /// Reads the database a running node's <see cref="TelemetryRecorder"/> writes (its own instance: LiteDB serves
    /// readers and the writer thread of one process together), without taking it over: not disposed here.
    /// </summary>
    internal TelemetryReader(LiteDatabase db)
    {
        _db = db;
        _ownsDb = false;
        LoadRuns();
    }

    private void LoadRuns()
    {
        foreach (var r in _db.GetCollection(TelemetryRecorder.RunsCollection).FindAll())
        {
            _runs[r["_id"].AsInt64] = new Run((byte)r["member"].AsInt32, r["classes"].AsArray.Select(v => v.AsString).ToArray(),
                r["neverSkip"].AsArray.Select(v => v.AsString).ToHashSet(StringComparer.Ordinal));
        }
    }

    /// <summary>Every lifecycle record, oldest segment first.</summary>
    public IEnumerable<LifecycleRecord> ReadLifecycles()
    {
        foreach (var seg in _db.GetCollection(TelemetryRecorder.LifecycleCollection).FindAll())
        {
            var run = _runs.GetValueOrDefault(seg["run"].AsInt64) ?? new Run(0, [], []);
            string source = seg["source"].AsString;
            byte[] data = seg["data"].AsBinary;
            int count = seg["count"].AsInt32;
            for (int i = 0; i < count; i++)
            {
                var o = LifecycleCodec.Read(data.AsSpan(i * LifecycleCodec.Size, LifecycleCodec.Size));
                string cls = o.ServiceClass < run.Classes.Length ? run.Classes[o.ServiceClass] : o.ServiceClass.ToString(CultureInfo.InvariantCulture);
                string reason = !float.IsNaN(o.Score) ? source
                    : run.NeverSkip.Contains(cls) && o.SyncDelayMs == 0 ? "never-skip"
                    : "static";
                yield return new LifecycleRecord(run.Member, o.Key, o.ServiceClass, cls, o.CreatedMs, o.EndedMs, o.Reason, o.FinalState, o.Synced,
                    o.SyncDelayMs, o.Score, reason, o.Messages, o.HasCounters, o.Counters);
            }
        }
    }

    public IEnumerable<BsonDocument> ReadMetrics() => _db.GetCollection(TelemetryRecorder.MetricsCollection).FindAll();

    /// <summary>Writes the lifecycle records as CSV; returns how many.</summary>
    public long ExportLifecycles(TextWriter w)
    {
        w.WriteLine(LifecycleHeader);
        long n = 0;
        var sb = new StringBuilder(256);
        foreach (var r in ReadLifecycles())
        {
            sb.Clear();
            var k = r.Key;
            var ic = CultureInfo.InvariantCulture;
            sb.Append(r.Member).Append(',').Append(r.StartMs).Append(',').Append(r.EndMs).Append(',')
                .Append(r.LifetimeSeconds.ToString("0.###", ic)).Append(',').Append(k.IsIPv6 ? 6 : 4).Append(',').Append(Protocol(k.Protocol)).Append(',')
                .Append(k.SourceAddress).Append(',').Append(k.SourcePort).Append(',').Append(k.DestinationAddress).Append(',').Append(k.DestinationPort).Append(',')
                .Append(k.Zone).Append(',').Append(Csv(r.Class)).Append(',').Append(r.Decision).Append(',')
                .Append(r.DelayMs < 0 ? "" : (r.DelayMs / 1000.0).ToString("0.###", ic)).Append(',')
                .Append(float.IsNaN(r.Score) ? "" : r.Score.ToString("0.####", ic)).Append(',').Append(Csv(r.Reason)).Append(',')
                .Append(r.Synced ? "true" : "false").Append(',').Append(r.Messages).Append(',')
                .Append(r.EndReason == Policy.ConnectionEndReason.Expired ? "expired" : "destroyed").Append(',').Append(StateName(r.FinalState)).Append(',')
                .Append(r.HasCounters ? "true" : "false").Append(',')
                .Append(r.Counters.OriginalPackets).Append(',').Append(r.Counters.OriginalBytes).Append(',')
                .Append(r.Counters.ReplyPackets).Append(',').Append(r.Counters.ReplyBytes);
            w.WriteLine(sb);
            n++;
        }

        return n;
    }

    /// <summary>
    /// Writes the lifecycle records in the trace CSV format (docs/trace-format.md) that <c>clustersync train --trace</c>
    /// and <c>simulate</c> read: start, duration, addresses and ports, the service class, bytes and packets.
    /// </summary>
    public long ExportTrace(TextWriter w)
    {
        long n = 0;
        ClusterSync.Workload.Trace.TraceCsv.Write(w, ReadLifecycles().Select(r =>
        {
            n++;
            var k = r.Key;
            return new ClusterSync.Workload.Trace.TraceRecord(r.StartMs / 1000.0, r.LifetimeSeconds, k.Protocol, k.SourceAddress.ToString(), k.SourcePort,
                k.DestinationAddress.ToString(), k.DestinationPort, r.Class, (long)r.Counters.OriginalBytes, (long)r.Counters.ReplyBytes,
                (long)r.Counters.OriginalPackets, (long)r.Counters.ReplyPackets);
        }));
        return n;
    }

    /// <summary>Writes the metrics as CSV, one line per class per interval; returns how many lines.</summary>
    public long ExportMetrics(TextWriter w)
    {
        w.WriteLine(MetricsHeader);
        long n = 0;
        var ic = CultureInfo.InvariantCulture;
        foreach (var m in ReadMetrics())
        {
            string common = string.Join(',', m["updatesSent"].AsInt64, m["bytesSent"].AsInt64, m["retransmissions"].AsInt64,
                m["nackRangesSent"].AsInt64, m["nackRangesReceived"].AsInt64, m["pending"].AsInt64, m["lagDatagrams"].AsInt64,
                m["atRiskConnections"].AsInt32, m["atRiskExposureSeconds"].AsDouble.ToString("0.###", ic),
                m["realizedLoss"].IsNull ? "" : m["realizedLoss"].AsDouble.ToString("0.###", ic), m["price"].AsDouble.ToString("0.####", ic),
                m["captureDropped"].AsInt64);
            foreach (var c in m["classes"].AsArray)
            {
                w.WriteLine(string.Join(',', m["time"].AsInt64, m["seconds"].AsDouble.ToString("0.###", ic), Csv(c["class"].AsString),
                    c["connections"].AsInt64, c["synced"].AsInt64, c["messages"].AsInt64, c["bytes"].AsDouble.ToString("0", ic),
                    c["exposureSeconds"].AsDouble.ToString("0.###", ic), common));
                n++;
            }
        }

        return n;
    }

    private static string Csv(string s) => s.Contains(',', StringComparison.Ordinal) || s.Contains('"', StringComparison.Ordinal)
        ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
        : s;

    private static string Protocol(byte p) => p switch
    {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        58 => "icmpv6",
        132 => "sctp",
        _ => p.ToString(CultureInfo.InvariantCulture),
    };

    private static string StateName(ProtocolState s) => s switch
    {
        ProtocolState.None => "none",
        ProtocolState.TcpSynSent => "syn_sent",
        ProtocolState.TcpSynReceived => "syn_recv",
        ProtocolState.TcpEstablished => "established",
        ProtocolState.TcpFinWait => "fin_wait",
        ProtocolState.TcpCloseWait => "close_wait",
        ProtocolState.TcpLastAck => "last_ack",
        ProtocolState.TcpTimeWait => "time_wait",
        ProtocolState.TcpClose => "close",
        ProtocolState.TcpSynSent2 => "syn_sent2",
        ProtocolState.UdpUnreplied => "udp_unreplied",
        ProtocolState.UdpReplied => "udp_replied",
        ProtocolState.IcmpActive => "icmp",
        ProtocolState.OtherActive => "other",
        _ => ((byte)s).ToString(CultureInfo.InvariantCulture),
    };

    public void Dispose()
    {
        if (_ownsDb)
        {
            _db.Dispose();
        }
    }
}
