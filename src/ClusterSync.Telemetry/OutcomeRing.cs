using ClusterSync.Policy;

namespace ClusterSync.Telemetry;

/// <summary>
/// A bounded single-producer/single-consumer ring of outcomes: the engine (one thread at a time, under its table
/// lock) writes, the telemetry writer thread drains. A full ring drops and counts; nothing blocks the engine.
/// </summary>
internal sealed class OutcomeRing
{
    private readonly ConnectionOutcome[] _items;
    private readonly int _mask;
    private long _head; // next to read (consumer)
    private long _tail; // next to write (producer)
    private long _dropped;

    public OutcomeRing(int capacity)
    {
        int size = 1;
        while (size < capacity)
        {
            size <<= 1;
        }

        _items = new ConnectionOutcome[size];
        _mask = size - 1;
    }

    public int Capacity => _items.Length;

    public long Dropped => Volatile.Read(ref _dropped);

    public long Count => Volatile.Read(ref _tail) - Volatile.Read(ref _head);

    public bool TryWrite(in ConnectionOutcome outcome)
    {
        long tail = _tail;
        if (tail - Volatile.Read(ref _head) >= _items.Length)
        {
            _dropped++;
            return false;
        }

        _items[tail & _mask] = outcome;
        Volatile.Write(ref _tail, tail + 1);
        return true;
    }

    /// <summary>Hands up to <paramref name="max"/> outcomes to <paramref name="into"/>; returns how many.</summary>
    public int Drain(Span<ConnectionOutcome> into)
    {
        long head = _head;
        long available = Volatile.Read(ref _tail) - head;
        int n = (int)Math.Min(available, into.Length);
        for (int i = 0; i < n; i++)
        {
            into[i] = _items[(head + i) & _mask];
        }

        Volatile.Write(ref _head, head + n);
        return n;
    }
}
