namespace ClusterSync.Simulation;

/// <summary>
/// One member's view of time: the world's monotonic clock for timestamps and timers, and a wall clock that is the
/// world's plus this member's offset, so a clock jump moves the member's wall clock (entry times, versions, epochs,
/// tombstone expiry) but never its monotonic clock, as on a real host.
/// </summary>
internal sealed class MemberClock(SimWorld world) : TimeProvider
{
    /// <summary>The wall clock at the start of every run (fixed, so runs do not depend on the day they run).</summary>
    public static readonly DateTimeOffset WallStart = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>How far this member's wall clock is from the world's (a clock jump adds to it).</summary>
    public TimeSpan WallOffset { get; set; }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => world.Now;

    public override DateTimeOffset GetUtcNow() => WallStart + TimeSpan.FromTicks(world.Now - SimWorld.StartTicks) + WallOffset;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        => world.CreateTimer(callback, state, dueTime, period);
}
