using Microsoft.Extensions.Logging;

namespace ClusterSync.FullSync;

/// <summary>Full-sync counters of one member (server and client side). Written with Interlocked: transfers run concurrently.</summary>
public sealed class FullSyncCounters
{
    public long Served;
    public long ServeFailed;
    public long Received;
    public long ReceiveFailed;
    public long HandshakeWrongKey;
    public long HandshakeFailed;
    public long FramesAuthenticationFailed;

    /// <summary>Records frames that failed on a record's extension block (mark, master): the transfer ends Malformed.</summary>
    public long RecordsBadExtension;
    public long Refused;
    /// <summary>Connections cut before the client proved the cluster key (deadline passed, wrong key, malformed, closed, unknown member).</summary>
    public long UnauthenticatedCut;
    /// <summary>Connections cut at accept: too many handshakes pending from that source address, or in all.</summary>
    public long HandshakesOverLimit;
    public long EntriesSent;
    public long EntriesReceived;
    public long EntriesApplied;
    /// <summary>Entries removed because a completed snapshot did not name them (a full sync replaces, it does not merge).</summary>
    public long EntriesRemoved;
    public long BytesSent;
    public long BytesReceived;

    /// <summary>A flat name → value view (status output, tests).</summary>
    public IReadOnlyDictionary<string, long> ToDictionary() => new SortedDictionary<string, long>(StringComparer.Ordinal)
    {
        ["full_sync_served"] = Volatile.Read(ref Served),
        ["full_sync_serve_failed"] = Volatile.Read(ref ServeFailed),
        ["full_sync_received"] = Volatile.Read(ref Received),
        ["full_sync_receive_failed"] = Volatile.Read(ref ReceiveFailed),
        ["full_sync_handshake_wrong_key"] = Volatile.Read(ref HandshakeWrongKey),
        ["full_sync_handshake_failed"] = Volatile.Read(ref HandshakeFailed),
        ["full_sync_frames_authentication_failed"] = Volatile.Read(ref FramesAuthenticationFailed),
        ["full_sync_records_bad_extension"] = Volatile.Read(ref RecordsBadExtension),
        ["full_sync_refused"] = Volatile.Read(ref Refused),
        ["full_sync_unauthenticated_cut"] = Volatile.Read(ref UnauthenticatedCut),
        ["full_sync_handshakes_over_limit"] = Volatile.Read(ref HandshakesOverLimit),
        ["full_sync_entries_sent"] = Volatile.Read(ref EntriesSent),
        ["full_sync_entries_received"] = Volatile.Read(ref EntriesReceived),
        ["full_sync_entries_applied"] = Volatile.Read(ref EntriesApplied),
        ["full_sync_entries_removed"] = Volatile.Read(ref EntriesRemoved),
        ["full_sync_bytes_sent"] = Volatile.Read(ref BytesSent),
        ["full_sync_bytes_received"] = Volatile.Read(ref BytesReceived),
    };

    /// <summary>
    /// Counts a transfer that failed with <paramref name="status"/>: as a failed serve (<paramref name="serving"/>) or
    /// pull, and under its cause — a wrong key, a refusal, a frame that failed authentication, or (serving) a handshake
    /// broken off before the peer was known (<paramref name="peer"/> 0).
    /// </summary>
    internal void CountFailure(FullSyncStatus status, bool serving, byte peer)
    {
        switch (status)
        {
            case FullSyncStatus.WrongKey:
                Interlocked.Increment(ref HandshakeWrongKey);
                break;
            case FullSyncStatus.AuthenticationFailed:
                Interlocked.Increment(ref FramesAuthenticationFailed);
                break;
            case FullSyncStatus.Refused:
                Interlocked.Increment(ref Refused);
                break;
            case FullSyncStatus.Malformed or FullSyncStatus.Truncated or FullSyncStatus.TimedOut when serving && peer == 0:
                Interlocked.Increment(ref HandshakeFailed);
                break;
        }

        Interlocked.Increment(ref serving ? ref ServeFailed : ref ReceiveFailed);
    }
}

/// <summary>Progress of one transfer: entries so far and the total the source announced (an estimate taken at the cut).</summary>
public readonly record struct FullSyncProgress(byte Peer, long Entries, long Total, long Bytes);

/// <summary>What a pull achieved.</summary>
public sealed record FullSyncResult(FullSyncStatus Status, string? Error, byte Peer, long Entries, long Applied, long Bytes,
    double Seconds, ulong SourceEpoch, ulong CutSequence)
{
    public bool Succeeded => Status == FullSyncStatus.Completed;

    /// <summary>Entries the joiner held that the snapshot did not name (ghosts), removed at End.</summary>
    public long Removed { get; init; }
}

/// <summary>Source-generated log messages (2xxx: full sync).</summary>
internal static partial class FullSyncLog
{
    [LoggerMessage(2001, LogLevel.Information, "Full sync server of member {Member} listening")]
    public static partial void Listening(ILogger logger, byte member);

    [LoggerMessage(2002, LogLevel.Information, "Full sync to member {Peer}: cut at epoch {Epoch} sequence {Sequence}, about {Total} entries")]
    public static partial void ServeStarted(ILogger logger, byte peer, ulong epoch, ulong sequence, long total);

    [LoggerMessage(2003, LogLevel.Information, "Full sync to member {Peer} done: {Entries} entries, {Bytes} bytes in {Seconds:F3} s")]
    public static partial void ServeDone(ILogger logger, byte peer, long entries, long bytes, double seconds);

    [LoggerMessage(2004, LogLevel.Warning, "Full sync to member {Peer} failed ({Status}): {Error}")]
    public static partial void ServeFailed(ILogger logger, byte peer, FullSyncStatus status, string error);

    [LoggerMessage(2005, LogLevel.Information, "Full sync from member {Peer}: {Entries}/{Total} entries, {Bytes} bytes")]
    public static partial void Progress(ILogger logger, byte peer, long entries, long total, long bytes);

    [LoggerMessage(2006, LogLevel.Information, "Full sync from member {Peer} done: {Entries} entries ({Applied} newer applied), {Bytes} bytes in {Seconds:F3} s; delta covered through epoch {Epoch} sequence {Sequence}")]
    public static partial void PullDone(ILogger logger, byte peer, long entries, long applied, long bytes, double seconds, ulong epoch, ulong sequence);

    [LoggerMessage(2007, LogLevel.Warning, "Full sync from member {Peer} failed ({Status}): {Error}")]
    public static partial void PullFailed(ILogger logger, byte peer, FullSyncStatus status, string error);

    [LoggerMessage(2008, LogLevel.Error, "Full sync server accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, Exception ex);
}
