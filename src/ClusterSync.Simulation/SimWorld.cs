namespace ClusterSync.Simulation;

/// <summary>
/// The simulated world: one monotonic clock, one seeded random source, one queue of events, all on one thread.
/// Events at the same instant run in the order they were scheduled, so a run is a function of its seed.
/// Timers (what <see cref="MemberClock.CreateTimer"/> hands out, e.g. a full sync's time-outs) fire from the same queue.
/// </summary>
internal sealed class SimWorld
{
    /// <summary>Where the monotonic clock starts (never 0: the engine reads a 0 timestamp as "never").</summary>
    public const long StartTicks = 100 * TimeSpan.TicksPerSecond;

    private readonly object _sync = new();
    private readonly PriorityQueue<Action, (long Due, long Order)> _events = new();
    private readonly PriorityQueue<(SimTimer Timer, long Generation), (long Due, long Order)> _timers = new();
    private long _order;
    private long _timerOrder;
    private long _now = StartTicks;

    public SimWorld(int seed)
    {
        Random = new Random(seed);
    }

    /// <summary>The one random source of the run (drawn only from the simulation thread, or from a full sync it waits for).</summary>
    public Random Random { get; }

    /// <summary>Monotonic simulated time in ticks (100 ns).</summary>
    public long Now
    {
        get
        {
            lock (_sync)
            {
                return _now;
            }
        }
    }

    /// <summary>Seconds of simulated time since the start.</summary>
    public double Seconds => (Now - StartTicks) / (double)TimeSpan.TicksPerSecond;

    public long EventsRun { get; private set; }

    public void Schedule(TimeSpan delay, Action action) => ScheduleAt(Now + Math.Max(0, delay.Ticks), action);

    public void ScheduleAt(long dueTicks, Action action)
    {
        lock (_sync)
        {
            _events.Enqueue(action, (Math.Max(dueTicks, _now), _order++));
        }
    }

    /// <summary>Runs every event and timer due up to <paramref name="untilTicks"/>, then sets the clock there.</summary>
    public void RunUntil(long untilTicks)
    {
        while (true)
        {
            Action? action = null;
            SimTimer? timer = null;
            lock (_sync)
            {
                bool hasEvent = _events.TryPeek(out var e, out var ep) && ep.Due <= untilTicks;
                bool hasTimer = _timers.TryPeek(out var t, out var tp) && tp.Due <= untilTicks;
                if (!hasEvent && !hasTimer)
                {
                    _now = Math.Max(_now, untilTicks);
                    return;
                }

                if (hasTimer && (!hasEvent || tp.Due <= ep.Due))
                {
                    _timers.Dequeue();
                    _now = Math.Max(_now, tp.Due);
                    if (t.Generation != t.Timer.Generation || t.Timer.Disposed)
                    {
                        continue; // changed or disposed since it was queued
                    }

                    timer = t.Timer;
                }
                else
                {
                    _events.Dequeue();
                    _now = Math.Max(_now, ep.Due);
                    action = e;
                }
            }

            EventsRun++;
            if (timer is not null)
            {
                timer.Fire(this);
            }
            else
            {
                action!();
            }
        }
    }

    public ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new SimTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Arm(SimTimer timer, long due)
    {
        lock (_sync)
        {
            timer.Due = due;
            timer.Generation++;
            _timers.Enqueue((timer, timer.Generation), (due, _timerOrder++));
        }
    }

    /// <summary>A timer on the simulated clock; fires on the simulation thread.</summary>
    private sealed class SimTimer(SimWorld world, TimerCallback callback, object? state) : ITimer
    {
        private long _period;

        public long Due { get; set; } = -1;

        public long Generation { get; set; }

        public bool Disposed { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            if (Disposed)
            {
                return false;
            }

            _period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            if (dueTime == Timeout.InfiniteTimeSpan)
            {
                Due = -1;
                Generation++;
                return true;
            }

            world.Arm(this, world.Now + Math.Max(0, dueTime.Ticks));
            return true;
        }

        public void Fire(SimWorld w)
        {
            if (_period > 0)
            {
                w.Arm(this, Due + _period);
            }
            else
            {
                Due = -1;
            }

            callback(state);
        }

        public void Dispose() => Disposed = true;

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
