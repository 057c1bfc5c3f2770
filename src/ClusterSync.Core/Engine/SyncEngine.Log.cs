using Microsoft.Extensions.Logging;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    /// <summary>Source-generated log messages with fixed event ids (1xxx: engine).</summary>
    private static partial class Log
    {
        [LoggerMessage(1001, LogLevel.Information, "Member {Member} started: epoch {Epoch}, {Peers} peers, MTU {Mtu}, encrypted {Encrypted}")]
        public static partial void Started(ILogger logger, byte member, ulong epoch, int peers, int mtu, bool encrypted);

        [LoggerMessage(1002, LogLevel.Warning, "Member {Member} runs INSECURE: delta sync is neither encrypted nor authenticated ('insecure: true')")]
        public static partial void InsecureMode(ILogger logger, byte member);

        [LoggerMessage(1004, LogLevel.Information, "Member {Member} sync transport path: {Path}")]
        public static partial void TransportPath(ILogger logger, byte member, string path);

        [LoggerMessage(1025, LogLevel.Warning, "Member {Member} sync transport path changed: {Path} (the kernel refused a feature; sending goes on without it)")]
        public static partial void TransportPathChanged(ILogger logger, byte member, string path);

        [LoggerMessage(1003, LogLevel.Information, "Member {Member} stopped")]
        public static partial void Stopped(ILogger logger, byte member);

        [LoggerMessage(1010, LogLevel.Warning, "Resync needed: {Missing} updates from member {Peer} can no longer be repaired ({Reason})")]
        public static partial void ResyncNeeded(ILogger logger, byte peer, ulong missing, string reason);

        [LoggerMessage(1011, LogLevel.Information, "Member {Peer} started a new epoch {Epoch} (was {Previous})")]
        public static partial void PeerRestarted(ILogger logger, byte peer, ulong epoch, ulong previous);

        [LoggerMessage(1020, LogLevel.Error, "Sender loop failed")]
        public static partial void SenderFailed(ILogger logger, Exception ex);

        [LoggerMessage(1021, LogLevel.Error, "Receiver loop failed")]
        public static partial void ReceiverFailed(ILogger logger, Exception ex);

        [LoggerMessage(1023, LogLevel.Error, "The transport failed to send (counted as send_failures; logged once)")]
        public static partial void SendFailed(ILogger logger, Exception ex);

        [LoggerMessage(1024, LogLevel.Error, "Handling a received datagram failed (counted as receive_failures; logged once)")]
        public static partial void ReceiveFailed(ILogger logger, Exception ex);

        [LoggerMessage(1030, LogLevel.Warning, "Sync link {Link} to member {Peer} is down: no heartbeat both ways within the dead interval ({DeadMs} ms)")]
        public static partial void LinkDown(ILogger logger, byte peer, byte link, long deadMs);

        [LoggerMessage(1031, LogLevel.Information, "Sync link {Link} to member {Peer} is up")]
        public static partial void LinkUp(ILogger logger, byte peer, byte link);

        [LoggerMessage(1032, LogLevel.Warning, "Traffic to member {Peer} moves from sync link {From} to sync link {To}")]
        public static partial void LinkSwitched(ILogger logger, byte peer, byte from, byte to);

        [LoggerMessage(1033, LogLevel.Information, "Member {Member} stopping: sent heartbeats with state Down on every link")]
        public static partial void Farewell(ILogger logger, byte member);

        [LoggerMessage(1040, LogLevel.Warning, "Member {Peer} no longer holds the send window back: its acknowledgements stayed at {Acked} (we sent {Sent}) for more than the dead interval ({DeadMs} ms)")]
        public static partial void PeerDroppedFromWindow(ILogger logger, byte peer, ulong acked, ulong sent, long deadMs);

        [LoggerMessage(1041, LogLevel.Information, "Member {Peer} holds the send window again: acknowledged through {Acked}")]
        public static partial void PeerBackInWindow(ILogger logger, byte peer, ulong acked);

        [LoggerMessage(1042, LogLevel.Error, "Replication to member {Peer} lags: {SequenceLag} datagrams unacknowledged, the oldest sent {AgeMs} ms ago (bound {BoundMs} ms)")]
        public static partial void ReplicationLagging(ILogger logger, byte peer, ulong sequenceLag, long ageMs, long boundMs);

        [LoggerMessage(1043, LogLevel.Information, "Replication to member {Peer} caught up (lag back within {BoundMs} ms)")]
        public static partial void ReplicationCaughtUp(ILogger logger, byte peer, long boundMs);

        [LoggerMessage(1050, LogLevel.Warning, "Anti-entropy: this member's table differs from member {Peer}'s (the Active) in {Ranges} of 64 top ranges; repairing those ranges")]
        public static partial void AntiEntropyMismatch(ILogger logger, byte peer, int ranges);

        [LoggerMessage(1051, LogLevel.Warning, "Anti-entropy repaired {Entries} entries in range depth {Depth} prefix {Prefix:x}")]
        public static partial void AntiEntropyRepaired(ILogger logger, byte depth, ulong prefix, int entries);

        [LoggerMessage(1022, LogLevel.Error, "Control timer failed")]
        public static partial void TimerFailed(ILogger logger, Exception ex);
    }
}
