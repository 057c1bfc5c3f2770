using ClusterSync.Protocol;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    private int _ticking;
    private long _lastHeartbeatTimestamp;
    private long _lastKeepAliveAckTimestamp;

    private byte _advertisedState;

    /// <summary>
    /// Member state and priority carried in heartbeats (the cluster lifecycle sets them). A change of state is announced
    /// on the next control tick, not the next heartbeat interval: a peer that still sees this member as Standby up to a
    /// heartbeat interval after it became Active would take over too (two Actives, the lower-ranked stepping down: a
    /// second failover for nothing; simulator seed 245).
    /// </summary>
    public byte AdvertisedState
    {
        get => _advertisedState;
        set
        {
            if (_advertisedState != value)
            {
                _advertisedState = value;
                Volatile.Write(ref _lastHeartbeatTimestamp, 0);
                if (_heartbeatThread is not null && Volatile.Read(ref _disposed) == 0)
                {
                    _heartbeatWake.Set(); // announced now by the heartbeat thread, not at its next interval
                }
            }
        }
    }

    public byte AdvertisedPriority { get; set; }

    private void ControlLoop()
    {
        var stop = _stop.Token.WaitHandle;
        while (!stop.WaitOne(_options.AckInterval))
        {
            OnTick();
        }
    }

    /// <summary>The control timer: acks and NACKs, heartbeats, delayed announcements, expiry. Runs every ack interval.</summary>
    internal void OnTick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) != 0 || _stop.IsCancellationRequested)
        {
            return;
        }

        try
        {
            long now = _time.GetTimestamp();
            long nowMs = NowMs();
            bool keepAlive = Elapsed(_lastKeepAliveAckTimestamp, now, _time) >= (long)_options.HeartbeatInterval.TotalMilliseconds;
            if (keepAlive)
            {
                _lastKeepAliveAckTimestamp = now;
            }

            SendAcks(keepAlive);
            if (_heartbeatThread is null && (_lastHeartbeatTimestamp == 0 || Elapsed(_lastHeartbeatTimestamp, now, _time) >= (long)_options.HeartbeatInterval.TotalMilliseconds))
            {
                // No heartbeat thread (a test clock, stepped mode): the tick sends them.
                _lastHeartbeatTimestamp = now;
                SendHeartbeats();
            }

            CheckReplicationLagIfDue(now);

            _links?.Evaluate(now);
            RunAntiEntropy(now);
            RelayWalkIfDue();
            ContinueHandoverWalk();

            bool queued;
            lock (_tableLock)
            {
                queued = ReleaseDueLocked(nowMs);
                // Walk the whole table about once a second.
                int ticksPerSecond = (int)Math.Max(1, 1000 / Math.Max(1, _options.AckInterval.TotalMilliseconds));
                int chunk = Math.Max(256, _table.SlotLimit / ticksPerSecond + 1);
                _counters.Expired += _table.SweepExpired(nowMs, ref _sweepCursor, chunk, _outcomes is null ? null : _onExpired);
                SweepTemplatesLocked(nowMs);
            }

            if (queued)
            {
                SignalSender();
            }

            Ticked?.Invoke();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.TimerFailed(_logger, ex);
        }
        finally
        {
            Volatile.Write(ref _ticking, 0);
        }
    }

    private void SendAcks(bool keepAlive)
    {
        foreach (var peer in _peers)
        {
            SendAck(peer, keepAlive);
        }
    }

    /// <summary>Acknowledges a peer's stream and NACKs its gaps (from the control timer, or the receiver for ack clocking).</summary>
    private void SendAck(PeerState peer, bool force)
    {
        Span<SequenceRange> ranges = stackalloc SequenceRange[AckMessage.MaxRanges];
        Span<byte> body = stackalloc byte[AckMessage.Size(AckMessage.MaxRanges)];
        int length;
        int gaps;
        lock (peer.Sync)
        {
            if (peer.Epoch == 0 || !(peer.AckDue || peer.Data.HasGaps || force))
            {
                return;
            }

            peer.AckDue = false;
            peer.UnackedDatagrams = 0;
            gaps = 0;
            long now = _time.GetTimestamp();
            if (peer.Data.HasGaps && Elapsed(peer.LastNackTimestamp, now, _time) >= (long)_options.NackInterval.TotalMilliseconds)
            {
                gaps = peer.Data.CollectGaps(ranges);
                peer.LastNackTimestamp = now;
            }

            length = AckMessage.Write(body, peer.MemberId, peer.Epoch, peer.Data.Cumulative, peer.Data.Target, ranges[..gaps]);
        }

        SendControl(MessageType.Ack, body[..length], peer.PeerIndex);
        Interlocked.Increment(ref _counters.AcksSent);
        Interlocked.Add(ref _counters.NackRangesSent, gaps);
    }

    private void SendHeartbeats()
    {
        Span<byte> body = stackalloc byte[HeartbeatMessage.Size];
        ulong last = LastDataSequence;
        if (_links is not null)
        {
            SendHeartbeatsOnLinks(body, last, _resend.OldestHeld(last));
        }
        else
        {
            HeartbeatMessage.Write(body, last, _resend.OldestHeld(last), AdvertisedState, AdvertisedPriority);
            for (int i = 0; i < _peers.Length; i++)
            {
                SendControl(MessageType.Heartbeat, body, i);
            }
        }

        Interlocked.Increment(ref _counters.HeartbeatsSent);
    }
}
