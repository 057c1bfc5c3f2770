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
public readonly record struct PeerStatus(
    byte MemberId, ulong Epoch, long? LastHeardAgeMs, bool Live, byte State, byte Priority, ulong ReceivedThrough, ulong AckedThrough);

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

    /// <summary>Connections in the table that are not tombstones. Walks the table under its lock: for status, not per packet.</summary>
    public int LiveConnectionCount
    {
        get
        {
            lock (_tableLock)
            {
                return _table.CountLive();
            }
        }
    }

    /// <summary>Time since <see cref="Start"/>; zero before.</summary>
    public TimeSpan Uptime => _startedTimestamp == 0 ? TimeSpan.Zero : _time.GetElapsedTime(_startedTimestamp);

    /// <summary>A copy of what this member knows of each peer, in transport peer order.</summary>
    public PeerStatus[] GetPeerStatus()
    {
        long now = _time.GetTimestamp();
        var result = new PeerStatus[_peers.Length];
        for (int i = 0; i < _peers.Length; i++)
        {
            result[i] = ReadPeerStatus(_peers[i], now);
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
        return new PeerStatus(p.MemberId, epoch, age, heard != 0 && IsLive(p, now), state, priority, received, Volatile.Read(ref p.AckedThrough));
    }

    private void MarkFailed(string loop, Exception ex) => _failure ??= $"{loop} loop failed: {ex.GetType().Name}: {ex.Message}";
}
