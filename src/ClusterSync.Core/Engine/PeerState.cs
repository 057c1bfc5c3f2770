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
    public ulong CandidateEpoch;
    public PacketProtection? CandidateOpener;
    public readonly ReceiveWindow Data = new();
    public readonly ControlReplayWindow Control = new();
    public bool AckDue;
    public int UnackedDatagrams;
    public long LastNackTimestamp;
    public long LastHeardTimestamp;
    public byte LastState;
    public byte LastPriority;

    // A full sync covered the peer's stream up to PendingCoverSequence of PendingCoverEpoch, an epoch not yet
    // adopted: applied when a packet of that epoch authenticates (see SyncEngine.MarkSynchronizedThrough).
    public ulong PendingCoverEpoch;
    public ulong PendingCoverSequence;

    // --- our stream, as the peer acknowledges it ---
    public ulong AckedEpoch;
    public ulong AckedThrough;

    public void Dispose()
    {
        Opener?.Dispose();
        CandidateOpener?.Dispose();
    }
}
