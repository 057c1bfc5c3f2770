using ClusterSync.Connections;

namespace ClusterSync.Engine;

/// <summary>What one member knows of a peer right now (for status output; a copy, not live state).</summary>
/// <param name="MemberId">The peer's member id.</param>
/// <param name="Epoch">The peer's current epoch as received (0: never heard).</param>
/// <param name="LastHeardAgeMs">Milliseconds since the last authenticated packet from the peer; null when never heard.</param>
/// <param name="Live">Heard within the dead interval.</param>
/// <param name="State">Member state the peer advertises in its heartbeats.</param>
/// <param name="Priority">Priority the peer advertises in its heartbeats.</param>
/// <param name="ReceivedThrough">The peer's data sequence received without gaps.</param>
/// <param name="AckedThrough">Our data sequence the peer acknowledged.</param>
/// <param name="RoundTripMs">Smoothed round trip of our data to the peer and its ack (RFC 6298; 0 before the first sample).</param>
/// <param name="RoundTripVariationMs">Its variation (RTTVAR); resends to the peer are held off SRTT + 4 RTTVAR.</param>
public readonly record struct PeerStatus(
    byte MemberId, ulong Epoch, long? LastHeardAgeMs, bool Live, byte State, byte Priority, ulong ReceivedThrough, ulong AckedThrough,
    double RoundTripMs = 0, double RoundTripVariationMs = 0);

/// <summary>How far one peer is behind this member's delta stream (a copy for status, metrics and health).</summary>
/// <param name="MemberId">The peer's member id.</param>
/// <param name="Live">Heard within the dead interval and not stopping (Down): only a live peer can lag.</param>
/// <param name="InWindow">The peer holds the send window back; false while it is dropped from it (stalled, or restarted and catching up).</param>
/// <param name="AckedThrough">Our data sequence the peer's current life acknowledged.</param>
/// <param name="SequenceLag">Data datagrams sent and not yet acknowledged by the peer.</param>
/// <param name="OldestUnackedAgeMs">Milliseconds the oldest update not yet acknowledged by the peer has waited (since it was sent, or since the peer's current life began if later); 0 when caught up.</param>
/// <param name="Lagging">Live and <paramref name="OldestUnackedAgeMs"/> past <see cref="SyncEngineOptions.MaxReplicationLag"/>.</param>
public readonly record struct ReplicationLag(
    byte MemberId, bool Live, bool InWindow, ulong AckedThrough, ulong SequenceLag, long OldestUnackedAgeMs, bool Lagging);

public sealed partial class SyncEngine
{
    private volatile string? _failure;

    /// <summary>Started, not yet disposed, and neither the sender nor the receiver loop has failed.</summary>
    public bool IsRunning => Volatile.Read(ref _started) == 1 && Volatile.Read(ref _disposed) == 0 && _failure is null;

    /// <summary>Why the engine stopped working on its own (a sender or receiver loop failed); null while healthy.</summary>
    public string? Failure => _failure;

    /// <summary>
    /// Why the transport counts as failed: every send has failed for at least a dead interval (the datagram transport
    /// throws on send: a plugin transport that lost its server, a socket error). Null while sends succeed, or failures
    /// are only sporadic. The node does not switch to another transport on its own: its health turns red instead.
    /// </summary>
    public string? TransportFailure
    {
        get
        {
            long failed = Volatile.Read(ref _lastSendFailedTimestamp);
            if (failed == 0 || Volatile.Read(ref _lastSendOkTimestamp) >= failed)
            {
                return null;
            }

            long since = Volatile.Read(ref _sendFailingSince);
            long ms = Elapsed(since, _time.GetTimestamp(), _time);
            return ms >= (long)_options.DeadInterval.TotalMilliseconds
                ? $"the sync transport has failed every send for {ms} ms ({Volatile.Read(ref _counters.SendFailures)} send failures, the last {Elapsed(failed, _time.GetTimestamp(), _time)} ms ago)"
                : null;
        }
    }

    /// <summary>
    /// Connections in the table that are not tombstones. Walks the table 4,096 slots per hold of its lock (the receiver
    /// and the data plane keep running during a status read of millions of entries): for status, not per packet. Exact on
    /// a quiet table; under churn an entry that moves during the walk may count once more or less.
    /// </summary>
    public int LiveConnectionCount
    {
        get
        {
            int live = 0;
            foreach (int i in WalkSlots())
            {
                ref var e = ref _table.EntryAt(i, out _);
                if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref e) && (e.Status & ConnectionStatus.Tombstone) == 0)
                {
                    live++;
                }
            }

            return live;
        }
    }

    /// <summary>
    /// When the earliest connection still held back by its sync delay is due, on the clock of the entries' created
    /// times; <see cref="long.MaxValue"/> when none is held. Lets a caller wait until every delay up to a moment has been
    /// decided (announced, held longer or dropped) instead of sleeping.
    /// </summary>
    public long NextDelayedDueMs
    {
        get
        {
            lock (_tableLock)
            {
                return _delayed.TryPeek(out _, out long due) ? due : long.MaxValue;
            }
        }
    }

    /// <summary>Time since <see cref="Start"/>; zero before.</summary>
    public TimeSpan Uptime => _startedTimestamp == 0 ? TimeSpan.Zero : _time.GetElapsedTime(_startedTimestamp);

    /// <summary>A copy of what this member knows of each peer, in transport peer order.</summary>
    public PeerStatus[] GetPeerStatus() => ReadPeers(ReadPeerStatus);

    /// <summary>What <paramref name="read"/> makes of each peer at one timestamp, in transport peer order.</summary>
    private T[] ReadPeers<T>(Func<PeerState, long, T> read)
    {
        long now = _time.GetTimestamp();
        var result = new T[_peers.Length];
        for (int i = 0; i < _peers.Length; i++)
        {
            result[i] = read(_peers[i], now);
        }

        return result;
    }

    private PeerStatus ReadPeerStatus(PeerState p, long now)
    {
        long heard = Volatile.Read(ref p.LastHeardTimestamp);
        ulong epoch;
        ulong received;
        byte state;
        byte priority;
        lock (p.Sync)
        {
            epoch = p.Epoch;
            received = p.Data.Cumulative;
            state = p.LastState;
            priority = p.LastPriority;
        }

        long? age = heard == 0 ? null : Elapsed(heard, now, _time);
        return new PeerStatus(p.MemberId, epoch, age, heard != 0 && IsLive(p, now), state, priority, received, Volatile.Read(ref p.AckedThrough),
            p.AckRtt.SmoothedMs, p.AckRtt.VariationMs);
    }

    /// <summary>Per-peer replication lag, in transport peer order. Cheap (no table walk): fine for every status or metrics read.</summary>
    public ReplicationLag[] GetReplicationLag() => ReadPeers(ReadReplicationLag);

    /// <summary>
    /// Why replication counts as failing: some live peer's oldest unacknowledged update is older than
    /// <see cref="SyncEngineOptions.MaxReplicationLag"/>. Null while every live peer keeps up (or the bound is 0).
    /// </summary>
    public string? ReplicationLagFailure
    {
        get
        {
            if (_options.EffectiveMaxReplicationLag == TimeSpan.Zero)
            {
                return null;
            }

            long now = _time.GetTimestamp();
            System.Text.StringBuilder? text = null;
            foreach (var p in _peers)
            {
                var lag = ReadReplicationLag(p, now);
                if (lag.Lagging)
                {
                    text ??= new System.Text.StringBuilder("replication lags past maxReplicationLag (")
                        .Append((long)_options.EffectiveMaxReplicationLag.TotalMilliseconds).Append(" ms):");
                    text.Append(" member ").Append(lag.MemberId).Append(' ').Append(lag.SequenceLag).Append(" datagrams behind, oldest ")
                        .Append(lag.OldestUnackedAgeMs).Append(" ms;");
                }
            }

            return text?.ToString().TrimEnd(';');
        }
    }

    private ReplicationLag ReadReplicationLag(PeerState p, long now)
    {
        bool live = IsLive(p, now) && Volatile.Read(ref p.LastState) != (byte)Membership.MemberState.Down;
        ulong last = LastDataSequence;
        ulong acked = Volatile.Read(ref p.AckedEpoch) == Epoch ? Math.Min(Volatile.Read(ref p.AckedThrough), last) : 0;
        ulong lag = last - acked;
        long age = 0;
        if (lag > 0)
        {
            // The oldest unacknowledged datagram, or the oldest the resend buffer still remembers the sending time of.
            ulong oldest = Math.Max(acked + 1, _resend.OldestHeld(last));
            long sent = Volatile.Read(ref _sentAt[(int)(oldest % (ulong)_sentAt.Length)]);
            long since = Math.Max(sent, Math.Max(Volatile.Read(ref p.LifeStartTimestamp), _startedTimestamp));
            age = since == 0 ? 0 : Math.Max(0, Elapsed(since, now, _time));
        }

        bool lagging = live && _options.EffectiveMaxReplicationLag > TimeSpan.Zero && age > (long)_options.EffectiveMaxReplicationLag.TotalMilliseconds;
        return new ReplicationLag(p.MemberId, live, !p.OutOfWindow, acked, lag, age, lagging);
    }

    /// <summary>Raises (once per episode) and clears the replication lag alarm of each peer (control tick).</summary>
    private void CheckReplicationLag(long now)
    {
        if (_options.EffectiveMaxReplicationLag == TimeSpan.Zero)
        {
            return;
        }

        long bound = (long)_options.EffectiveMaxReplicationLag.TotalMilliseconds;
        foreach (var p in _peers)
        {
            var lag = ReadReplicationLag(p, now);
            if (lag.Lagging && !p.LagAlarmRaised)
            {
                p.LagAlarmRaised = true;
                _counters.ReplicationLagAlarms++;
                Log.ReplicationLagging(_logger, p.MemberId, lag.SequenceLag, lag.OldestUnackedAgeMs, bound);
            }
            else if (!lag.Lagging && p.LagAlarmRaised)
            {
                p.LagAlarmRaised = false;
                Log.ReplicationCaughtUp(_logger, p.MemberId, bound);
            }
        }
    }

    private void MarkFailed(string loop, Exception ex) => _failure ??= $"{loop} loop failed: {ex.GetType().Name}: {ex.Message}";
}
