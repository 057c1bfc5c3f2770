namespace ClusterSync.Core.Tests.Engine;

/// <summary>
/// An in-memory datagram channel: records every datagram sent (a copy, per peer) and never receives anything
/// (<see cref="ReceiveAsync"/> waits until cancelled). Tests feed the captured bytes to another engine by hand.
/// </summary>
internal sealed class CaptureChannel : IDatagramChannel
{
    private readonly object _sync = new();
    private readonly List<(int Peer, byte[] Datagram)> _sent = [];

    public CaptureChannel(int peerCount, int maxDatagramSize = 65507)
    {
        PeerCount = peerCount;
        MaxDatagramSize = maxDatagramSize;
    }

    public int MaxDatagramSize { get; }

    public int PeerCount { get; }

    public bool Disposed { get; private set; }

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        Assert.InRange(peerIndex, 0, PeerCount - 1);
        lock (_sync)
        {
            _sent.Add((peerIndex, datagram.ToArray()));
            Monitor.PulseAll(_sync);
        }

        return ValueTask.CompletedTask;
    }

    public async ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        throw new InvalidOperationException("Task.Delay(Infinite) completed without cancellation.");
    }

    /// <summary>Every datagram sent to <paramref name="peer"/>, in order (copies).</summary>
    public List<byte[]> SentTo(int peer)
    {
        lock (_sync)
        {
            return _sent.Where(s => s.Peer == peer).Select(s => (byte[])s.Datagram.Clone()).ToList();
        }
    }

    /// <summary>Data datagrams (not acks, heartbeats or gone) sent to <paramref name="peer"/>, in order.</summary>
    public List<byte[]> DataTo(int peer = 0) => SentTo(peer).Where(IsData).ToList();

    /// <summary>Datagrams of <paramref name="type"/> (acks, heartbeats, digests…) sent to <paramref name="peer"/>, in order.</summary>
    public List<byte[]> Sent(MessageType type, int peer = 0) => SentTo(peer).Where(d => d[3] == (byte)type).ToList();

    public static bool IsData(byte[] datagram) => datagram.Length > 3 && datagram[3] == (byte)MessageType.Data;

    /// <summary>
    /// Waits until <paramref name="condition"/> holds; false on timeout. Woken by every send, and re-checked at least
    /// every 10 ms for conditions on state the engine updates just after sending (its counters).
    /// </summary>
    public bool WaitUntil(Func<CaptureChannel, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_sync)
        {
            while (!condition(this))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                Monitor.Wait(_sync, left < TimeSpan.FromMilliseconds(10) ? left : TimeSpan.FromMilliseconds(10));
            }

            return true;
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> data datagrams went to peer 0; fails the test on timeout.</summary>
    public List<byte[]> WaitForData(int count, TimeSpan? timeout = null)
    {
        Assert.True(
            WaitUntil(c => c.DataTo(0).Count >= count, timeout ?? TimeSpan.FromSeconds(10)),
            $"timed out waiting for {count} data datagram(s); have {DataTo(0).Count}");
        return DataTo(0);
    }

    public void Dispose() => Disposed = true;
}
