namespace ClusterSync.Engine;

/// <summary>
/// Entry versions: a hybrid logical clock, <c>(unix ms &lt;&lt; 20) | counter</c>, never going backwards and
/// pushed past every version observed from peers, so a member that restarts or takes over a connection
/// always writes versions newer than what replicas hold. Not thread-safe: used under the table lock.
/// </summary>
internal sealed class VersionClock
{
    /// <summary>Bits of a version below its milliseconds (the counter).</summary>
    public const int CounterBits = 20;

    private ulong _last;

    /// <summary>The newest version written or observed so far.</summary>
    public ulong Current => _last;

    public ulong Next(long nowMs)
    {
        ulong physical = (ulong)Math.Max(nowMs, 0) << CounterBits;
        _last = physical > _last ? physical : _last + 1;
        return _last;
    }

    public void Observe(ulong version)
    {
        if (version > _last)
        {
            _last = version;
        }
    }
}
