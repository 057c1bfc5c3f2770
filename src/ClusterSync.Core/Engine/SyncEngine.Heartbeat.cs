using ClusterSync.Connections;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Engine;

/// <summary>
/// Failure detection that nothing else can starve (issue 13): heartbeats go out from a thread of their own
/// (<c>cs-hb-&lt;id&gt;</c>) that does nothing else — no acks, no expiry, no anti-entropy, no membership, no table lock —
/// and is woken at once when the advertised state changes; they are taken in by the receiver thread, which never
/// waits for the table lock (SyncEngine.ApplyBacklog.cs); a peer's dead interval follows the measured round trip of
/// its link; a member that notices its own stall does not accuse its peers.
/// </summary>
/// <remarks>
/// With a test clock or in stepped mode there is no heartbeat thread: the control tick sends heartbeats as before
/// (deterministic for the simulator and the fake-clock tests).
/// </remarks>
public sealed partial class SyncEngine
{
    /// <summary>Entries copied per hold of the table lock by <see cref="SnapshotTableInSteps"/>.</summary>
    internal const int SnapshotStep = 16_384;

    private Thread? _heartbeatThread;
    private readonly AutoResetEvent _heartbeatWake = new(false);
    private long _stalledUntilTimestamp;
    private double _stallLateMs;
    private long _heartbeatStalls;
    private long _lastLagCheckTimestamp;

    /// <summary>Kernel thread id of the heartbeat thread (0 until it runs, and without one: a test clock).</summary>
    public int HeartbeatThreadId { get; private set; }

    /// <summary>Times the heartbeat thread woke more than half a dead interval late (this process was stalled).</summary>
    public long HeartbeatStalls => Interlocked.Read(ref _heartbeatStalls);

    /// <summary>
    /// The dead interval in force toward <paramref name="p"/>: the configured one (heartbeat interval × missed
    /// heartbeats) plus 4 RTTVAR of its link — a heartbeat's one-way delay shifts every arrival alike, only its variation
    /// widens the gap between two arrivals, and 4 RTTVAR bounds it as in RFC 9002's PTO and SCTP's RTO — at most twice
    /// the configured one. A 0.05 ms loopback link keeps the configured value; a jittery WAN link gets its jitter on top.
    /// </summary>
    /// <remarks>
    /// The variation counts only while it is current: the estimate took a sample within the configured dead interval
    /// before the peer was last heard (<see cref="JitterAllowanceMs"/>). Samples come from the peer's acknowledgements of
    /// this member's data, so a member that sends the peer nothing (a Standby, toward its Active) keeps whatever it
    /// measured the last time it did — on a link that was lossy and jittery then — for as long as it runs. Such an
    /// estimate describes the link as it was, not the heartbeats now being judged (simulator seed 10244: the only
    /// Standby's one sample toward its Active, 277 ms, came from re-sending its replica to it over a 35 % lossy link, so
    /// RTTVAR = R/2 and the allowance was the full 300 ms; the link had been clean for 0.5 s, without a sample, when the
    /// Active crashed; the Standby saw it dead 570 ms later instead of 300, and the traffic went to an isolated Active).
    /// </remarks>
    private double PeerDeadMs(PeerState p)
    {
        double dead = _options.DeadInterval.TotalMilliseconds;
        return dead + JitterAllowanceMs(p, dead) + StallAllowanceMs();
    }

    /// <summary>
    /// 4 RTTVAR of <paramref name="p"/>'s link, at most <paramref name="deadMs"/>, if the estimate took a sample in the
    /// <paramref name="deadMs"/> before the peer was last heard; otherwise 0 (never measured, or measured long before).
    /// </summary>
    private double JitterAllowanceMs(PeerState p, double deadMs)
    {
        long sampled = Volatile.Read(ref p.AckRttSampleTimestamp);
        long heard = Volatile.Read(ref p.LastHeardTimestamp);
        if (sampled == 0 || (heard - sampled) * 1000.0 / _time.TimestampFrequency > deadMs)
        {
            return 0;
        }

        return Math.Min(4 * p.AckRtt.VariationMs, deadMs);
    }

    /// <summary>
    /// While this process catches up after a stall its heartbeat thread noticed, a peer's silence during the stall is no
    /// evidence (its heartbeats may be unread in the socket): the peers get the stall's length on top of their dead interval.
    /// </summary>
    private double StallAllowanceMs()
        => _time.GetTimestamp() < Volatile.Read(ref _stalledUntilTimestamp) ? Volatile.Read(ref _stallLateMs) : 0;

    /// <summary>SRTT + 4 RTTVAR of the slowest live peer's link (0 before any sample): how long an announcement takes to be sure to arrive.</summary>
    internal double SlowestPeerRetryMs()
    {
        long now = _time.GetTimestamp();
        double slowest = 0;
        foreach (var p in _peers)
        {
            if (IsLive(p, now))
            {
                slowest = Math.Max(slowest, p.AckRtt.RetryMs);
            }
        }

        return slowest;
    }

    /// <summary>True while this process is catching up after a stall its heartbeat thread noticed (one dead interval).</summary>
    internal bool StalledRecently() => _time.GetTimestamp() < Volatile.Read(ref _stalledUntilTimestamp);

    /// <summary>
    /// The live connections, copied <see cref="SnapshotStep"/> slots per hold of the table lock so the receiver (which
    /// also takes heartbeats in) never waits long behind it. A fuzzy snapshot: each entry as it was when its step ran;
    /// one that moved between steps may be missed and comes with the next change. Stops early (what it has so far)
    /// when <paramref name="cancelled"/> says so.
    /// </summary>
    public List<KeyValuePair<ConnectionKey, ConnectionEntry>> SnapshotTableInSteps(Func<bool>? cancelled = null)
    {
        List<KeyValuePair<ConnectionKey, ConnectionEntry>> list;
        lock (_tableLock)
        {
            list = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(_table.Count);
        }

        for (int from = 0; ; from += SnapshotStep)
        {
            if (cancelled?.Invoke() == true)
            {
                return list;
            }

            lock (_tableLock)
            {
                int limit = _table.SlotLimit;
                if (from >= limit)
                {
                    return list;
                }

                int to = Math.Min(limit, from + SnapshotStep);
                for (int i = from; i < to; i++)
                {
                    if (_table.TryGetAt(i, out var key, out var entry) && (entry.Status & ConnectionStatus.Tombstone) == 0)
                    {
                        list.Add(new(key, entry));
                    }
                }
            }
        }
    }

    /// <summary>The heartbeat thread: a heartbeat every interval, at once after a state change; notes its own lateness.</summary>
    private void HeartbeatLoop()
    {
        HeartbeatThreadId = ThreadCpu.CurrentThreadId();
        var handles = new WaitHandle[] { _stop.Token.WaitHandle, _heartbeatWake };
        long interval = (long)(_options.HeartbeatInterval.TotalSeconds * _time.TimestampFrequency);
        long halfDead = (long)(_options.DeadInterval.TotalSeconds * _time.TimestampFrequency / 2);
        long due = _time.GetTimestamp();
        while (true)
        {
            long now = _time.GetTimestamp();
            if (now - due > halfDead)
            {
                // Woken far later than asked: this process was stalled (GC, CPU starvation). The peers' heartbeats may be
                // sitting unread in the socket: their silence is no evidence for one dead interval.
                double lateMs = (now - due) * 1000.0 / _time.TimestampFrequency;
                Volatile.Write(ref _stallLateMs, lateMs);
                Volatile.Write(ref _stalledUntilTimestamp, now + (2 * halfDead));
                Interlocked.Increment(ref _heartbeatStalls);
                Log.HeartbeatLate(_logger, MemberId, lateMs);
            }

            try
            {
                Volatile.Write(ref _lastHeartbeatTimestamp, now);
                SendHeartbeats();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.TimerFailed(_logger, ex);
            }

            due = now + interval;
            long wait = due - _time.GetTimestamp();
            int waitMs = wait <= 0 ? 0 : (int)Math.Ceiling(wait * 1000.0 / _time.TimestampFrequency);
            int woke = WaitHandle.WaitAny(handles, waitMs);
            if (woke == 0)
            {
                return;
            }

            if (woke == 1)
            {
                due = _time.GetTimestamp(); // a state change: announce it now (not late)
            }
        }
    }

    /// <summary>The replication lag check, every heartbeat interval on the control tick (it used to ride the heartbeat).</summary>
    private void CheckReplicationLagIfDue(long now)
    {
        if (_lastLagCheckTimestamp == 0 || Elapsed(_lastLagCheckTimestamp, now, _time) >= (long)_options.HeartbeatInterval.TotalMilliseconds)
        {
            _lastLagCheckTimestamp = now;
            CheckReplicationLag(now);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1090, LogLevel.Warning, "Member {Member}: heartbeat thread woke {Milliseconds:F0} ms late (this process stalled); no takeover for one dead interval")]
        public static partial void HeartbeatLate(ILogger logger, byte member, double milliseconds);
    }
}
