using ClusterSync.Connections;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Engine;

/// <summary>
/// The receiver never waits for the table lock (issue 13 item 1; Engine/README.md, "Heartbeats are received on a thread
/// the table lock cannot stall"). The receiver thread reads the socket, authenticates, checks replay, acks and NACKs,
/// and handles heartbeats and acks itself; it applies received Data records itself too while the table lock is free
/// (the common case: the same code and cost as before). When the lock stays busy longer than
/// <see cref="ApplyLockPatience"/> (a snapshot step, a status walk, a commit, a long Submit) it does not wait: it hands
/// the records, in order, to a bounded backlog that the apply thread (<c>cs-apply-&lt;id&gt;</c>, started the first
/// time it is needed) applies once the lock is free, and goes back to the socket. Until the backlog has drained, every
/// further Data record joins it behind the earlier ones (per-peer and overall order kept); a Data datagram that would
/// overflow it is dropped before its sequence is marked received (<c>drops_apply_backlog_full</c>), so the peer's
/// NACK/resend, or the resync when it is gone from the resend buffer, repairs it exactly as a datagram lost in the network.
/// </summary>
/// <remarks>
/// Exactly one thread applies received records at any time: the receiver while the backlog is idle, the apply thread
/// while it is active (it turns it idle, under <see cref="_backlogSync"/>, only once everything in it is applied).
/// Stepped mode and an engine that was not started (micro benchmarks, fake-clock tests) apply on the calling thread and
/// wait for the lock, as before.
/// </remarks>
public sealed partial class SyncEngine
{
    /// <summary>Records the backlog holds (a few MB, allocated the first time the lock is found busy).</summary>
    internal const int ApplyBacklogCapacity = 32_768;

    /// <summary>How long the receiver waits for a busy table lock before it hands its records to the apply thread.</summary>
    private const int ApplyLockPatienceMs = 1;

    private static readonly TimeSpan ApplyLockPatience = TimeSpan.FromMilliseconds(ApplyLockPatienceMs);

    private readonly object _backlogSync = new();
    private readonly AutoResetEvent _backlogWake = new(false);
    private readonly ManualResetEventSlim _backlogIdle = new(true);
    private ConnectionEvent[]? _backlog;
    private byte[]? _backlogSenders;
    private long _backlogHead; // records applied from the backlog (apply thread writes)
    private long _backlogTail; // records handed to the backlog (receiver writes, under _backlogSync)
    private volatile bool _backlogActive;
    private bool _offloadApply; // set by Start (threads): the receiver may hand records off instead of waiting
    private Thread? _applyThread;
    private long _backlogSinceTimestamp;
    private long _backlogDropsAtStart;

    /// <summary>Test hook: the engine's table lock (a test holds it to stand in for a long snapshot step or commit).</summary>
    internal object TableLockForTests => _tableLock;

    /// <summary>The longest time between two heartbeats of <paramref name="peer"/> this member handled in the peer's current life (ms).</summary>
    internal double LongestHeartbeatGapMs(byte peer)
    {
        var state = _peersById[peer] ?? throw new ArgumentOutOfRangeException(nameof(peer));
        lock (state.Sync)
        {
            return state.LongestHeartbeatGapTicks * 1000.0 / _time.TimestampFrequency;
        }
    }

    /// <summary>Records handed to the backlog and not applied yet (status, tests).</summary>
    internal long ApplyBacklogCount => Volatile.Read(ref _backlogTail) - Volatile.Read(ref _backlogHead);

    /// <summary>
    /// Receiver thread: moves staged records <paramref name="from"/>.. to the backlog and wakes the apply thread. The
    /// caller made sure they fit (<see cref="BacklogHasRoom"/> before a datagram is marked received; an idle backlog is
    /// empty and holds far more than the staging area).
    /// </summary>
    private void HandOffStaged(int from)
    {
        int n = _stagedCount - from;
        _stagedCount = 0;
        if (n <= 0)
        {
            return;
        }

        if (_backlog is null)
        {
            _backlog = new ConnectionEvent[ApplyBacklogCapacity];
            _backlogSenders = new byte[ApplyBacklogCapacity];
        }

        while (!BacklogHasRoom(n))
        {
            _backlogWake.Set(); // cannot happen with the checks before marking; never lose a marked record
            Thread.Yield();
        }

        var ring = _backlog;
        var senders = _backlogSenders!;
        long tail = _backlogTail;
        for (int i = 0; i < n; i++)
        {
            int slot = (int)((tail + i) % ApplyBacklogCapacity);
            ring[slot] = _receiveStaging[from + i];
            senders[slot] = _stagedSender;
        }

        bool started;
        lock (_backlogSync)
        {
            started = !_backlogActive;
            if (started)
            {
                _backlogActive = true;
                _backlogIdle.Reset();
                _backlogSinceTimestamp = _time.GetTimestamp();
                _backlogDropsAtStart = _counters.DropsFor(Protocol.DropReason.ApplyBacklogFull);
            }

            Volatile.Write(ref _backlogTail, tail + n);
        }

        if (started)
        {
            _counters.ApplyHandoffs++;
            if (_applyThread is null)
            {
                _applyThread = SyncThread(ApplyLoop, "apply", $"cs-apply-{MemberId}"); // the sync threads' scheduling: it takes the table lock
                _applyThread.Start();
                Log.ApplyThreadStarted(_logger, MemberId, ApplyLockPatienceMs, ApplyBacklogCapacity);
            }
        }

        _backlogWake.Set();
    }

    /// <summary>True when <paramref name="records"/> more fit in the backlog (receiver thread; only the apply thread frees room).</summary>
    private bool BacklogHasRoom(int records)
        => ApplyBacklogCapacity - (Volatile.Read(ref _backlogTail) - Volatile.Read(ref _backlogHead)) >= records;

    /// <summary>
    /// Receiver thread, before a Data datagram is marked received: false when the backlog is active and could not take
    /// the datagram's records (with what is staged): the datagram is then dropped unmarked, as if lost.
    /// </summary>
    private bool DataFitsBacklog(ReadOnlySpan<byte> body)
        => !_backlogActive || body.Length < 2
           || BacklogHasRoom(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(body) + _stagedCount);

    /// <summary>
    /// Receiver thread: waits until the apply thread has applied everything handed to it (a template record, which the
    /// receiver applies itself under the table lock, must come after the records before it). Rare: templates are few.
    /// </summary>
    private void WaitForBacklog()
    {
        if (_backlogActive)
        {
            try
            {
                _backlogIdle.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                // stopping: the receiver loop ends at its next look at the token
            }
        }
    }

    /// <summary>The apply thread: applies the backlog, waiting for the table lock as long as it takes.</summary>
    private void ApplyLoop()
    {
        var handles = new WaitHandle[] { _stop.Token.WaitHandle, _backlogWake };
        try
        {
            while (WaitHandle.WaitAny(handles) != 0)
            {
                DrainBacklog();
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            MarkFailed("apply", ex);
            Log.ReceiverFailed(_logger, ex);
        }
    }

    private void DrainBacklog()
    {
        var ring = _backlog!;
        var senders = _backlogSenders!;
        while (true)
        {
            long head = _backlogHead;
            long tail;
            long dropped = 0;
            bool ended = false;
            double episodeMs = 0;
            lock (_backlogSync)
            {
                tail = _backlogTail;
                if (head == tail)
                {
                    if (_backlogActive)
                    {
                        ended = true;
                        dropped = _counters.DropsFor(Protocol.DropReason.ApplyBacklogFull) - _backlogDropsAtStart;
                        episodeMs = _time.GetElapsedTime(_backlogSinceTimestamp).TotalMilliseconds;
                        _backlogActive = false;
                        _backlogIdle.Set();
                    }
                }
            }

            if (head == tail)
            {
                if (ended && dropped > 0)
                {
                    Log.ApplyBacklogOverflowed(_logger, MemberId, dropped, episodeMs, ApplyBacklogCapacity);
                }

                return;
            }

            // [head, tail) in runs of one sender (the relay decision is per sender), at most LockGroup per hold.
            long nowMs = NowMs();
            while (head < tail)
            {
                byte sender = senders[(int)(head % ApplyBacklogCapacity)];
                _relayTo = RelayTarget(sender);
                if (AppliedObserver is not null)
                {
                    AppliedGroupTimestamp = _time.GetTimestamp();
                }

                long end = Math.Min(tail, head + LockGroup);
                lock (_tableLock)
                {
                    for (; head < end; head++)
                    {
                        int slot = (int)(head % ApplyBacklogCapacity);
                        if (senders[slot] != sender)
                        {
                            break;
                        }

                        ApplyLocked(ring[slot], nowMs);
                    }
                }

                _relayTo = 0;
                Volatile.Write(ref _backlogHead, head);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1095, LogLevel.Information, "Member {Member}: the table lock was busy for more than {PatienceMs} ms while records arrived; received records now wait on the apply thread while it is (up to {Capacity} records), heartbeats and acks are handled at once")]
        public static partial void ApplyThreadStarted(ILogger logger, byte member, int patienceMs, int capacity);

        [LoggerMessage(1096, LogLevel.Warning, "Member {Member}: {Dropped} data datagrams dropped unread while the table lock was busy ({Milliseconds:F0} ms; apply backlog of {Capacity} records full); they are repaired like lost datagrams")]
        public static partial void ApplyBacklogOverflowed(ILogger logger, byte member, long dropped, double milliseconds, int capacity);
    }
}
