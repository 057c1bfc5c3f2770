using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;

namespace ClusterSync.Cli.Bench;

/// <summary>
/// <c>bench delta --breakdown</c>: where an update's latency goes, on the engines' one clock (Stopwatch ticks). The
/// sending member reports its passes, the datagram each record went into, sealing and the send call; the receiving
/// member reports when its receive call returned each Data datagram (and when that call was made); the apply time is
/// the receiver's <see cref="SyncEngine.AppliedGroupTimestamp"/>. Per applied update (receiver thread) the latency is
/// cut into six stages that add up to it:
/// <list type="bullet">
/// <item><c>queue</c>: submitted → the sender's pass that takes it (the sender's wake-up, or the pass before it still running);</item>
/// <item><c>encode</c>: pass start → its datagram sealed;</item>
/// <item><c>batch</c>: sealed → the pass's send call starts (the rest of the pass sealed first);</item>
/// <item><c>receiver_busy</c>: send call started → the receiver calls receive again (it was still handling earlier datagrams);</item>
/// <item><c>kernel_wake</c>: then → its receive call returns it (the kernel's loopback path and, when the receiver was blocked, its wake-up);</item>
/// <item><c>apply</c>: received → its group is applied (decoding the batch, the table lock).</item>
/// </list>
/// Costs a few clock reads per pass and datagram and a few array reads per update: off unless asked for.
/// </summary>
internal sealed class DeltaStageTrace
{
    public static readonly string[] Stages = ["queue", "encode", "batch", "receiver_busy", "kernel_wake", "apply"];
    private const int Ring = 1 << 16;
    private const int Mask = Ring - 1;
    private const int HistogramMicros = 100_000; // 100 ms; the last bucket holds everything above
    private readonly ulong[] _sequenceOf; // per connection index: the data datagram its last record went into
    private readonly ulong[] _ringSequence = new ulong[Ring];
    private readonly long[] _pass = new long[Ring];
    private readonly long[] _sealed = new long[Ring];
    private readonly long[] _sendStart = new long[Ring];
    private readonly long[] _sendEnd = new long[Ring];
    private readonly long[] _called = new long[Ring];
    private readonly long[] _returned = new long[Ring];
    private readonly long[][] _histograms = [.. Stages.Select(_ => new long[HistogramMicros + 1])];
    private readonly long[] _sendCall = new long[HistogramMicros + 1];
    private readonly Tail _over1 = new();
    private readonly Tail _over2 = new();
    private readonly double _microsPerTick = 1_000_000.0 / Stopwatch.Frequency;
    private long _currentPass;
    private long _unmatched;

    public DeltaStageTrace(int entries) => _sequenceOf = new ulong[entries];

    /// <summary>The hooks of the sending member (its receiver's calls are ignored).</summary>
    public ISyncStageTrace ForSender => new SenderView(this);

    /// <summary>The hooks of the receiving member (its sender's calls are ignored).</summary>
    public ISyncStageTrace ForReceiver => new ReceiverView(this);

    /// <summary>Receiver thread (the applied observer): splits one update's latency into the stages.</summary>
    public void Add(int index, long submitted, long applied)
    {
        ulong sequence = _sequenceOf[index];
        int r = (int)(sequence & Mask);
        if (sequence == 0 || Volatile.Read(ref _ringSequence[r]) != sequence || _returned[r] == 0)
        {
            _unmatched++;
            return;
        }

        long pass = Math.Max(_pass[r], submitted);
        long sealedAt = Math.Max(_sealed[r], pass);
        long sendStart = Math.Max(_sendStart[r], sealedAt);
        long called = _called[r];
        long returned = Math.Max(_returned[r], sendStart);
        long applyAt = Math.Max(applied, returned);
        long busyEnd = Math.Clamp(called, sendStart, returned);
        Span<long> ticks = stackalloc long[6];
        ticks[0] = pass - submitted;
        ticks[1] = sealedAt - pass;
        ticks[2] = sendStart - sealedAt;
        ticks[3] = busyEnd - sendStart;
        ticks[4] = returned - busyEnd;
        ticks[5] = applyAt - returned;
        double total = 0;
        Span<double> micros = stackalloc double[Stages.Length];
        for (int s = 0; s < Stages.Length; s++)
        {
            micros[s] = ticks[s] * _microsPerTick;
            total += micros[s];
            _histograms[s][Math.Clamp((long)micros[s], 0, HistogramMicros)]++;
        }

        _sendCall[Math.Clamp((long)((_sendEnd[r] - _sendStart[r]) * _microsPerTick), 0, HistogramMicros)]++;
        if (total > 1000)
        {
            _over1.Add(micros);
        }

        if (total > 2000)
        {
            _over2.Add(micros);
        }
    }

    /// <summary>The breakdown for the JSON report.</summary>
    public Dictionary<string, object> Report()
    {
        var stages = new Dictionary<string, object>();
        for (int s = 0; s < Stages.Length; s++)
        {
            stages[Stages[s]] = Percentiles(_histograms[s]);
        }

        return new Dictionary<string, object>
        {
            ["stages_ms"] = stages,
            ["send_call_ms"] = Percentiles(_sendCall),
            ["over_1ms"] = _over1.Report(),
            ["over_2ms"] = _over2.Report(),
            ["unmatched_updates"] = _unmatched,
        };
    }

    private static Dictionary<string, object> Percentiles(long[] histogram) => new()
    {
        ["p50"] = DeltaBenchmark.Percentile(histogram, 0.50),
        ["p99"] = DeltaBenchmark.Percentile(histogram, 0.99),
        ["p999"] = DeltaBenchmark.Percentile(histogram, 0.999),
        ["max"] = DeltaBenchmark.Percentile(histogram, 1.0),
    };

    /// <summary>The updates above a latency: how many, the mean of each stage, and in how many each stage was the largest.</summary>
    private sealed class Tail
    {
        private readonly double[] _sum = new double[Stages.Length];
        private readonly long[] _largest = new long[Stages.Length];
        private long _count;

        public void Add(ReadOnlySpan<double> micros)
        {
            _count++;
            int largest = 0;
            for (int s = 0; s < micros.Length; s++)
            {
                _sum[s] += micros[s];
                if (micros[s] > micros[largest])
                {
                    largest = s;
                }
            }

            _largest[largest]++;
        }

        public Dictionary<string, object> Report()
        {
            var mean = new Dictionary<string, object>();
            var largest = new Dictionary<string, object>();
            for (int s = 0; s < Stages.Length; s++)
            {
                mean[Stages[s]] = _count == 0 ? 0 : Math.Round(_sum[s] / _count / 1000.0, 3);
                largest[Stages[s]] = _largest[s];
            }

            return new Dictionary<string, object> { ["updates"] = _count, ["mean_ms"] = mean, ["largest_stage"] = largest };
        }
    }

    private sealed class SenderView(DeltaStageTrace t) : ISyncStageTrace
    {
        public void SenderPass(long timestamp) => t._currentPass = timestamp;

        public void RecordEncoded(in ConnectionKey key, ulong sequence)
        {
            int index = BenchWorkload.IndexOf(key);
            if ((uint)index < (uint)t._sequenceOf.Length)
            {
                t._sequenceOf[index] = sequence;
            }
        }

        public void DatagramSealed(ulong sequence, long timestamp)
        {
            int r = (int)(sequence & Mask);
            t._pass[r] = t._currentPass;
            t._sealed[r] = timestamp;
            t._returned[r] = 0;
            Volatile.Write(ref t._ringSequence[r], sequence);
        }

        public void DatagramsSent(ulong first, ulong last, long start, long end)
        {
            for (ulong s = first; s <= last; s++)
            {
                t._sendStart[s & Mask] = start;
                t._sendEnd[s & Mask] = end;
            }
        }

        public void DatagramReceived(byte sender, ulong sequence, long called, long returned)
        {
        }
    }

    private sealed class ReceiverView(DeltaStageTrace t) : ISyncStageTrace
    {
        public void SenderPass(long timestamp)
        {
        }

        public void RecordEncoded(in ConnectionKey key, ulong sequence)
        {
        }

        public void DatagramSealed(ulong sequence, long timestamp)
        {
        }

        public void DatagramsSent(ulong first, ulong last, long start, long end)
        {
        }

        public void DatagramReceived(byte sender, ulong sequence, long called, long returned)
        {
            int r = (int)(sequence & Mask);
            if (Volatile.Read(ref t._ringSequence[r]) == sequence)
            {
                t._called[r] = called;
                t._returned[r] = returned;
            }
        }
    }
}
