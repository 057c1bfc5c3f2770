using System.Numerics;
using ClusterSync.Protocol;

namespace ClusterSync.Reliability;

internal enum WindowCheck
{
    New,
    Duplicate,
    TooFar,
}

/// <summary>
/// Tracks the data sequence numbers received from one sender epoch: a cumulative point (everything at or
/// below it is received or written off) and a bitmap of <see cref="Size"/> sequences above it. It is both the
/// replay window (a sequence is accepted once) and the source of acknowledgements and NACK ranges.
/// </summary>
internal sealed class ReceiveWindow
{
    public const int Size = 1 << 16;
    private const int Words = Size / 64;
    private readonly ulong[] _bits = new ulong[Words];
    private ulong _cumulative;
    private ulong _highest;
    private ulong _announced;

    /// <summary>Every sequence at or below this one was received (or written off as lost).</summary>
    public ulong Cumulative => _cumulative;

    /// <summary>The highest sequence received.</summary>
    public ulong Highest => _highest;

    /// <summary>The highest sequence the sender says it has sent (from heartbeats), or received.</summary>
    public ulong Target => Math.Max(_highest, _announced);

    public bool HasGaps => Target > _cumulative;

    public WindowCheck Check(ulong seq)
    {
        if (seq <= _cumulative)
        {
            return WindowCheck.Duplicate;
        }

        if (seq - _cumulative > Size)
        {
            return WindowCheck.TooFar;
        }

        return (_bits[(int)((seq / 64) % Words)] & (1UL << (int)(seq % 64))) != 0 ? WindowCheck.Duplicate : WindowCheck.New;
    }

    /// <summary>Records <paramref name="seq"/>, which <see cref="Check"/> said is new.</summary>
    public void Mark(ulong seq)
    {
        _bits[(int)((seq / 64) % Words)] |= 1UL << (int)(seq % 64);
        if (seq > _highest)
        {
            _highest = seq;
        }

        Advance();
    }

    /// <summary>The sender announced it has sent up to <paramref name="last"/>: a lost tail becomes a gap.</summary>
    public void NoteAnnounced(ulong last)
    {
        if (last > _announced)
        {
            _announced = last;
        }
    }

    /// <summary>
    /// Writes off every sequence up to <paramref name="last"/> (it can never arrive); returns how many of them had
    /// not been received.
    /// </summary>
    public ulong SkipThrough(ulong last)
    {
        ulong missing = 0;
        while (_cumulative < last)
        {
            ulong next = _cumulative + 1;
            ref ulong word = ref _bits[(int)((next / 64) % Words)];
            ulong bit = 1UL << (int)(next % 64);
            if ((word & bit) == 0)
            {
                missing++;
            }

            word &= ~bit;
            _cumulative = next;
        }

        if (_highest < _cumulative)
        {
            _highest = _cumulative;
        }

        Advance();
        return missing;
    }

    /// <summary>Makes room for <paramref name="seq"/> by writing off what falls out of the window; returns the count lost.</summary>
    public ulong SlideFor(ulong seq) => seq - _cumulative > Size ? SkipThrough(seq - Size) : 0;

    private void Advance()
    {
        while (true)
        {
            ulong next = _cumulative + 1;
            ref ulong word = ref _bits[(int)((next / 64) % Words)];
            int bitIndex = (int)(next % 64);
            // Consume a run of set bits from bitIndex upward within this word.
            ulong shifted = word >> bitIndex;
            int run = BitOperations.TrailingZeroCount(~shifted);
            if (run == 0)
            {
                return;
            }

            if (bitIndex + run > 64)
            {
                run = 64 - bitIndex;
            }

            ulong mask = run == 64 ? ulong.MaxValue : ((1UL << run) - 1) << bitIndex;
            word &= ~mask;
            _cumulative += (ulong)run;
        }
    }

    /// <summary>
    /// Fills <paramref name="ranges"/> with the missing sequences between the cumulative point and the target,
    /// ascending and never beyond the window's edge (what lies past it is asked for once the window has moved).
    /// </summary>
    public int CollectGaps(Span<SequenceRange> ranges)
    {
        int n = 0;
        ulong limit = Math.Min(Target, _cumulative + Size);
        ulong s = _cumulative + 1;
        while (s <= limit && n < ranges.Length)
        {
            while (s <= limit && IsSet(s))
            {
                s++;
            }

            if (s > limit)
            {
                break;
            }

            ulong first = s;
            while (s <= limit && !IsSet(s))
            {
                s++;
            }

            ranges[n++] = new SequenceRange(first, s - 1);
        }

        return n;
    }

    private bool IsSet(ulong seq) => seq - _cumulative <= Size && (_bits[(int)((seq / 64) % Words)] & (1UL << (int)(seq % 64))) != 0;

    public void Reset()
    {
        Array.Clear(_bits);
        _cumulative = 0;
        _highest = 0;
        _announced = 0;
    }
}
