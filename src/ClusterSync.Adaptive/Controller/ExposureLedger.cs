using ClusterSync.Policy;

namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// Connection-seconds and exposure-seconds since start over the connections the adaptive policy can act on, live ones
/// included: a decision registers a live connection (<see cref="Started"/>), its outcome closes it (<see cref="Ended"/>).
/// Ended connections count exactly (lifetime, min(lifetime, delay)); a live connection counts its age, and as exposure
/// its age while its delay runs (a per-second ring of arrivals per grid delay), the delay once it is announced, its
/// age when never synced. The operator's never-sync classes are kept apart (their exposure is their whole life,
/// whatever the price). No allocation; callers serialize (<see cref="AdaptiveController"/> holds a lock).
/// </summary>
internal sealed class ExposureLedger
{
    private const int RingSeconds = 512; // > the longest finite grid delay (300 s) + 1

    private readonly long[] _delayMs;     // finite grid delays > 0
    private readonly long[] _windowSec;   // seconds a slot stays pending: ceil(delay)
    private readonly int[] _count;        // [g * RingSeconds + slot]
    private readonly long[] _createdSum;  // [g * RingSeconds + slot], milliseconds
    private long _sec = long.MinValue;

    private long _liveCount;
    private long _liveCreatedSum;
    private long _neverCount;
    private long _neverCreatedSum;
    private long _announcedDelaySum; // Σ delay of live connections already announced (ms)
    private long _endedLifetimeMs;
    private long _endedExposureMs;

    private long _opLiveCount;
    private long _opLiveCreatedSum;
    private long _opEndedLifetimeMs;

    public ExposureLedger(IReadOnlyList<double> gridSeconds)
    {
        _delayMs = gridSeconds.Where(d => d > 0 && !double.IsPositiveInfinity(d)).Select(d => (long)Math.Round(d * 1000)).ToArray();
        _windowSec = _delayMs.Select(d => Math.Max(1, (d + 999) / 1000)).ToArray();
        _count = new int[_delayMs.Length * RingSeconds];
        _createdSum = new long[_delayMs.Length * RingSeconds];
    }

    /// <summary>A connection the policy acts on was decided: announced at once (0), after <paramref name="delayMs"/>, or never (−1).</summary>
    public void Started(long createdMs, int delayMs)
    {
        Advance(createdMs);
        _liveCount++;
        _liveCreatedSum += createdMs;
        if (delayMs < 0)
        {
            _neverCount++;
            _neverCreatedSum += createdMs;
        }
        else if (delayMs > 0)
        {
            int g = Bucket(delayMs);
            long sec = FloorSec(createdMs);
            int i = (g * RingSeconds) + (int)(sec & (RingSeconds - 1));
            if (sec > _sec - _windowSec[g])
            {
                _count[i]++;
                _createdSum[i] += createdMs;
            }
            else
            {
                _announcedDelaySum += _delayMs[g]; // decided late (older than its delay): already past it
            }
        }
    }

    /// <summary>A connection of an operator never-sync class started.</summary>
    public void StartedNeverSyncClass(long createdMs)
    {
        _opLiveCount++;
        _opLiveCreatedSum += createdMs;
    }

    /// <summary>A connection of an operator never-sync class ended.</summary>
    public void EndedNeverSyncClass(in ConnectionOutcome o)
    {
        _opEndedLifetimeMs += o.LifetimeMs;
        if (_opLiveCount > 0)
        {
            _opLiveCount--;
            _opLiveCreatedSum -= o.CreatedMs;
        }
    }

    /// <summary>A connection the policy acts on ended (an outcome never registered by <see cref="Started"/> counts as ended only).</summary>
    public void Ended(in ConnectionOutcome o)
    {
        Advance(o.EndedMs);
        _endedLifetimeMs += o.LifetimeMs;
        _endedExposureMs += o.ExposureMs;
        if (_liveCount <= 0)
        {
            return; // not registered (a controller swapped in mid-run, or a test feeding outcomes alone)
        }

        _liveCount--;
        _liveCreatedSum -= o.CreatedMs;
        if (o.SyncDelayMs < 0)
        {
            if (_neverCount > 0)
            {
                _neverCount--;
                _neverCreatedSum -= o.CreatedMs;
            }
        }
        else if (o.SyncDelayMs > 0)
        {
            int g = Bucket(o.SyncDelayMs);
            long sec = FloorSec(o.CreatedMs);
            int i = (g * RingSeconds) + (int)(sec & (RingSeconds - 1));
            if (sec > _sec - _windowSec[g] && sec <= _sec && _count[i] > 0)
            {
                _count[i]--;
                _createdSum[i] -= o.CreatedMs;
            }
            else
            {
                _announcedDelaySum = Math.Max(0, _announcedDelaySum - _delayMs[g]);
            }
        }
    }

    /// <summary>Connection-seconds and exposure-seconds since start at <paramref name="nowMs"/> (acted-on classes), and the never-sync classes' connection-seconds.</summary>
    public (double ExposureSeconds, double LifetimeSeconds, double NeverSyncClassSeconds) Totals(long nowMs)
    {
        Advance(nowMs);
        double exposure = _endedExposureMs + _announcedDelaySum + Math.Max(0, (_neverCount * (double)nowMs) - _neverCreatedSum);
        for (int g = 0; g < _delayMs.Length; g++)
        {
            for (long s = _sec - _windowSec[g] + 1; s <= _sec; s++)
            {
                int i = (g * RingSeconds) + (int)(s & (RingSeconds - 1));
                if (_count[i] > 0)
                {
                    exposure += Math.Clamp((_count[i] * (double)nowMs) - _createdSum[i], 0, _count[i] * (double)_delayMs[g]);
                }
            }
        }

        double lifetime = _endedLifetimeMs + Math.Max(0, (_liveCount * (double)nowMs) - _liveCreatedSum);
        double op = _opEndedLifetimeMs + Math.Max(0, (_opLiveCount * (double)nowMs) - _opLiveCreatedSum);
        return (exposure / 1000, lifetime / 1000, op / 1000);
    }

    /// <summary>Exposure-seconds of the connections that ended (the rest of <see cref="Totals"/>' exposure is the live ones').</summary>
    public double EndedExposureSeconds => _endedExposureMs / 1000.0;

    /// <summary>Live connections the policy acts on (registered, not yet ended).</summary>
    public long Live => _liveCount;

    // Moves the ring to the second of nowMs: slots whose delay has run out are announced (their delay banked) and cleared.
    private void Advance(long nowMs)
    {
        long sec = FloorSec(nowMs);
        if (_sec == long.MinValue)
        {
            _sec = sec;
            return;
        }

        if (sec <= _sec)
        {
            return;
        }

        long steps = Math.Min(sec - _sec, RingSeconds);
        for (long k = 0; k < steps; k++)
        {
            long s = sec - steps + 1 + k; // the second being entered
            for (int g = 0; g < _delayMs.Length; g++)
            {
                int i = (g * RingSeconds) + (int)((s - _windowSec[g]) & (RingSeconds - 1));
                if (_count[i] != 0)
                {
                    _announcedDelaySum += _count[i] * _delayMs[g];
                    _count[i] = 0;
                    _createdSum[i] = 0;
                }
            }
        }

        if (sec - _sec > RingSeconds)
        {
            // A jump longer than the ring: whatever is left has long been announced.
            for (int g = 0; g < _delayMs.Length; g++)
            {
                for (int slot = 0; slot < RingSeconds; slot++)
                {
                    int i = (g * RingSeconds) + slot;
                    _announcedDelaySum += _count[i] * _delayMs[g];
                    _count[i] = 0;
                    _createdSum[i] = 0;
                }
            }
        }

        _sec = sec;
    }

    private static long FloorSec(long ms) => ms >= 0 ? ms / 1000 : ((ms + 1) / 1000) - 1;

    /// <summary>The finite grid delay nearest to <paramref name="delayMs"/> (log distance).</summary>
    private int Bucket(long delayMs)
    {
        for (int g = 0; g < _delayMs.Length; g++)
        {
            if (_delayMs[g] == delayMs)
            {
                return g; // a grid delay (every model decision): no logarithms on the decision path
            }
        }

        int best = 0;
        double bestDistance = double.PositiveInfinity;
        double x = Math.Log(Math.Max(1, delayMs));
        for (int g = 0; g < _delayMs.Length; g++)
        {
            double dist = Math.Abs(Math.Log(_delayMs[g]) - x);
            if (dist < bestDistance)
            {
                bestDistance = dist;
                best = g;
            }
        }

        return best;
    }
}
