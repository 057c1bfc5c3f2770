using System.Diagnostics;
using ClusterSync.Transport;

namespace ClusterSync.IntegrationTests.Wan;

/// <summary>
/// A WAN-like path on the send side of a real channel: each datagram is dropped with probability <c>loss</c>, or
/// delivered after <c>delay ± jitter</c> (uniform), in order per destination (a path whose queues add jitter but do
/// not reorder). A thread of its own delivers the datagrams when they are due; seeded, so a run can be repeated.
/// This kernel has no netem: this is the emulation the WAN tests run on.
/// </summary>
internal sealed class WanLinkChannel : IDatagramChannel
{
    private readonly IDatagramChannel _inner;
    private readonly double _delayMs;
    private readonly double _jitterMs;
    private readonly double _loss;
    private readonly Random _random;
    private readonly PriorityQueue<(byte[] Datagram, int Peer), (long Due, long Order)> _queue = new();
    private readonly long[] _lastDue;
    private readonly object _gate = new();
    private readonly Thread _pump;
    private readonly CancellationTokenSource _stop = new();
    private long _order;

    public WanLinkChannel(IDatagramChannel inner, TimeSpan delay, TimeSpan jitter, double loss, int seed)
    {
        _inner = inner;
        _delayMs = delay.TotalMilliseconds;
        _jitterMs = jitter.TotalMilliseconds;
        _loss = loss;
        _random = new Random(seed);
        _lastDue = new long[inner.PeerCount];
        _pump = new Thread(Pump) { IsBackground = true, Name = "wan-link" };
        _pump.Start();
    }

    /// <summary>Datagrams handed to the link.</summary>
    public long Offered { get; private set; }

    /// <summary>Datagrams the link dropped.</summary>
    public long Dropped { get; private set; }

    public int MaxDatagramSize => _inner.MaxDatagramSize;

    public int PeerCount => _inner.PeerCount;

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            Offered++;
            if (_random.NextDouble() < _loss)
            {
                Dropped++;
                return ValueTask.CompletedTask;
            }

            double ms = _delayMs + ((_random.NextDouble() * 2) - 1) * _jitterMs;
            long due = Stopwatch.GetTimestamp() + (long)(ms * Stopwatch.Frequency / 1000);
            due = Math.Max(due, _lastDue[peerIndex]); // no reordering on the path
            _lastDue[peerIndex] = due;
            _queue.Enqueue((datagram.ToArray(), peerIndex), (due, _order++));
            Monitor.Pulse(_gate);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => _inner.ReceiveAsync(buffer, cancellationToken);

    private void Pump()
    {
        while (!_stop.IsCancellationRequested)
        {
            (byte[] Datagram, int Peer) next;
            lock (_gate)
            {
                if (!_queue.TryPeek(out next, out var at))
                {
                    Monitor.Wait(_gate, 50);
                    continue;
                }

                long wait = at.Due - Stopwatch.GetTimestamp();
                if (wait > 0)
                {
                    Monitor.Wait(_gate, TimeSpan.FromSeconds(Math.Min(wait, Stopwatch.Frequency / 20) / (double)Stopwatch.Frequency));
                    continue;
                }

                _queue.Dequeue();
            }

            try
            {
                _inner.SendAsync(next.Datagram, next.Peer).AsTask().GetAwaiter().GetResult();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        lock (_gate)
        {
            Monitor.PulseAll(_gate);
        }

        _pump.Join(TimeSpan.FromSeconds(5));
        _inner.Dispose();
        _stop.Dispose();
    }
}
