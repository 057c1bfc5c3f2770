using ClusterSync.Reliability;
using ClusterSync.Security;

namespace ClusterSync.Engine;

/// <summary>
/// What a member knows of one peer. The receive half (epoch, key, windows) is written by the receiver thread
/// and read by the control timer under <see cref="Sync"/>; the send half (what the peer acknowledged of our
/// stream) is written by the receiver thread and read by the sender thread.
/// </summary>
internal sealed class PeerState : IDisposable
{
    public PeerState(byte memberId, int peerIndex)
    {
        MemberId = memberId;
        PeerIndex = peerIndex;
    }

    public byte MemberId { get; }

    public int PeerIndex { get; }

    public object Sync { get; } = new();

    // --- the peer's stream, as we receive it ---
    public ulong Epoch;
    public PacketProtection? Opener;
    // Keys derived for epochs newer than Epoch that have not authenticated a packet yet (a restart, or forgeries):
    // a few are cached (an attacker alternating epochs cannot force a derivation per packet) and new derivations are
    // rate-limited by a token bucket (see SyncEngine.CandidateOpener).
    public const int CandidateSlots = 4;
    public readonly ulong[] CandidateEpochs = new ulong[CandidateSlots];
    public readonly PacketProtection?[] CandidateOpeners = new PacketProtection?[CandidateSlots];
    public int NextCandidateSlot;
    public double DeriveTokens = -1; // -1: full (first use)
    public long DeriveRefillTimestamp;
    public readonly ReceiveWindow Data = new();
    public readonly ControlReplayWindow Control = new();
    public bool AckDue;
    public int UnackedDatagrams;
    public long LastNackTimestamp;
    public long LastHeardTimestamp;
    public byte LastState;
    public byte LastPriority;

    // When the peer's last heartbeat was handled, and the longest time between two handled in this life (receiver
    // thread, under Sync): how late this member's receiver ever took in the peer's liveness (tests, diagnostics).
    public long LastHeartbeatTimestamp;
    public long LongestHeartbeatGapTicks;

    // A heartbeat of the peer was heard in this member's life: until then LastState is a default, not what the peer
    // said (data alone proves it alive, not whether it is Active or starting).
    public bool StateHeard;

    // A full sync covered the peer's stream up to PendingCoverSequence of PendingCoverEpoch, an epoch not yet
    // adopted: applied when a packet of that epoch authenticates (see SyncEngine.MarkSynchronizedThrough).
    public ulong PendingCoverEpoch;
    public ulong PendingCoverSequence;

    // --- our stream, as the peer acknowledges it (this life of the peer only) ---
    public ulong AckedEpoch;
    public ulong AckedThrough;

    /// <summary>Counts the peer's lives seen by this member; NACKs queued for an earlier life are ignored.</summary>
    public long Generation;

    // --- the round trip of our stream to the peer ---
    /// <summary>
    /// Our newest datagram sent → the peer's ack that covers it with nothing missing (Karn: never a resent datagram; at
    /// most the ack interval late). Receiver thread only; <see cref="ResendHoldoffTicks"/> is what the sender reads.
    /// </summary>
    public readonly RttEstimator AckRtt = new();

    /// <summary>
    /// When <see cref="AckRtt"/> last took a sample (0: never). Receiver thread writes; the failure detector reads it: an
    /// estimate with no sample in the dead interval before the peer was last heard says nothing about the link then.
    /// </summary>
    public long AckRttSampleTimestamp;

    /// <summary>
    /// How long after resending a datagram to this peer a NACK for it is still an echo of the request that datagram
    /// answers (SRTT + 4 RTTVAR, in timestamp ticks; 0 before the first sample). Written by the receiver thread.
    /// </summary>
    public long ResendHoldoffTicks;

    /// <summary>When each of our datagrams was last resent to this peer (sender thread), indexed like the resend buffer.</summary>
    public long[] LastResent { get; init; } = [];

    // --- the send window's view of the peer (sender thread; status reads) ---
    /// <summary>The peer's acked-through point when the sender last saw it move (or the peer was caught up).</summary>
    public ulong WindowAcked;

    /// <summary>When <see cref="WindowAcked"/> last moved: a peer behind that has not moved for a dead interval is stalled.</summary>
    public long WindowProgressTimestamp;

    /// <summary>
    /// The peer no longer holds the send window back (stalled for a dead interval, or restarted), as its death would
    /// not; it is readmitted once its acknowledgements are back within the window.
    /// </summary>
    public volatile bool OutOfWindow;

    // --- replication lag (control tick) ---
    /// <summary>When this life of the peer was first heard: updates sent before it were never owed to this life.</summary>
    public long LifeStartTimestamp;

    public bool LagAlarmRaised;

    /// <summary>
    /// Starts every per-peer state afresh for a new life (epoch) of the peer, under <see cref="Sync"/> on the receiver
    /// thread: the receive windows, ack and NACK state, what the peer said of itself, and what its earlier life
    /// acknowledged of our stream (a restarted peer has none of it; keeping the old acked-through point would skip
    /// the resends it NACKs and wedge the send window). The pending full-sync cover is applied by the caller.
    /// </summary>
    public void ResetForNewEpoch()
    {
        Data.Reset();
        Control.Reset();
        AckDue = false;
        UnackedDatagrams = 0;
        LastNackTimestamp = 0;
        LastHeartbeatTimestamp = 0;
        LongestHeartbeatGapTicks = 0;
        LastState = 0; // Init: until its first heartbeat, the new life is starting
        Volatile.Write(ref AckedThrough, 0);
        Volatile.Write(ref AckedEpoch, 0);
        Volatile.Write(ref Generation, Generation + 1);
        OutOfWindow = true; // a restart is a death: the new life holds the window back once it has caught up
    }

    /// <summary>Drops every cached candidate key (after an epoch was adopted), except <paramref name="keep"/>.</summary>
    public void ClearCandidates(PacketProtection? keep = null)
    {
        for (int i = 0; i < CandidateSlots; i++)
        {
            if (!ReferenceEquals(CandidateOpeners[i], keep))
            {
                CandidateOpeners[i]?.Dispose();
            }

            CandidateOpeners[i] = null;
            CandidateEpochs[i] = 0;
        }
    }

    public void Dispose()
    {
        Opener?.Dispose();
        ClearCandidates();
    }
}
