using System.Runtime.CompilerServices;
using ClusterSync.Connections;

namespace ClusterSync.Engine;

/// <summary>
/// Split-brain handover (Membership/README.md, "Split brain"): an Active that must step down for a higher-ranked
/// Active first re-sends its whole table, so the member that keeps the role holds every connection this one carried
/// and replicated (the winner applies what is newer by version, as it applies any delta). The acknowledgements of the
/// data stream tell when it has all of it.
/// </summary>
public sealed partial class SyncEngine
{
    private volatile bool _handingOver;
    private volatile bool _relaying;
    private volatile bool _relayWalkDue;
    private volatile bool _relaysUnfollowed;
    private byte _handoverWinner;
    private byte _relayTo; // receive thread: the followed Active while applying a datagram of another member (RelayTarget)

    /// <summary>
    /// Queues every entry of the table (live ones and tombstones) that <paramref name="winner"/> did not write last, for
    /// the sender; while the handover runs, the sender also sends the live replicas this member holds of other members'
    /// connections (normally only their owners send them). The winner's own connections are left out: it wrote them,
    /// so this member's copy is at best what it has, at worst a connection it destroyed whose tombstone expired (a
    /// copy would bring it back). A delayed connection not yet announced stays unannounced. Control tick; walks the
    /// table in chunks.
    /// </summary>
    /// <param name="winner">The member that keeps (or takes) the role.</param>
    /// <param name="paced">
    /// Queue the table <see cref="HandoverWalkStep"/> slots per control tick, the next step only once the sender's queue
    /// is below <see cref="HandoverWalkStep"/> (a Standby re-sending its replica to a new Active: that member is busy
    /// committing its own replica, and a re-send of 1,000,000 entries at once made it apply them all during its commit,
    /// issue 13). The first step runs at once. An entry not reached yet goes out as it is when the walk reaches it; one
    /// already passed that changes again was changed by its owner, which sends it. <see cref="HandoverQueued"/> and
    /// <see cref="HandedOverTo"/> count the walk as queued until it ends. Not paced in stepped mode (the simulator's
    /// runs stay as they were).
    /// </param>
    internal void BeginHandover(byte winner, bool paced = false)
    {
        _handoverWinner = winner;
        _handingOver = true;
        if (paced && !_stepped)
        {
            _handoverWalkExcept = winner;
            Volatile.Write(ref _handoverWalkCursor, 0);
            ContinueHandoverWalk();
        }
        else
        {
            Volatile.Write(ref _handoverWalkCursor, -1);
            QueueTableExcept(winner);
        }

        SignalSender();
    }

    /// <summary>Slots of the table a paced handover queues per control tick (<see cref="BeginHandover"/>).</summary>
    internal const int HandoverWalkStep = WalkChunkSlots;

    private int _handoverWalkCursor = -1; // next slot of a paced handover walk, -1: none under way
    private byte _handoverWalkExcept;

    /// <summary>Test hook and status: true while a paced handover walk has table left to queue.</summary>
    internal bool HandoverWalkUnderway => Volatile.Read(ref _handoverWalkCursor) >= 0;

    /// <summary>Control tick: the next step of a paced handover walk, while the sender keeps up (see <see cref="BeginHandover"/>).</summary>
    private void ContinueHandoverWalk()
    {
        int cursor = Volatile.Read(ref _handoverWalkCursor);
        if (cursor < 0 || !_handingOver || Volatile.Read(ref _pendingCount) >= HandoverWalkStep)
        {
            return;
        }

        int next;
        lock (_tableLock)
        {
            int limit = _table.SlotLimit;
            int end = (int)Math.Min(limit, (long)cursor + HandoverWalkStep);
            for (int i = cursor; i < end; i++)
            {
                QueueSlotExceptLocked(i, _handoverWalkExcept);
            }

            next = end >= limit ? -1 : end;
        }

        Interlocked.Add(ref _handoverWalkSteps, 1);
        Volatile.Write(ref _handoverWalkCursor, next);
        SignalSender();
    }

    private long _handoverWalkSteps;

    /// <summary>Steps of paced handover walks run (a test reads it; one per control tick at most).</summary>
    internal long HandoverWalkSteps => Interlocked.Read(ref _handoverWalkSteps);

    /// <summary>Queues every entry that <paramref name="except"/> did not write last (0: every entry) for the sender; see <see cref="BeginHandover"/>.</summary>
    private void QueueTableExcept(byte except)
    {
        foreach (int i in WalkSlots())
        {
            QueueSlotExceptLocked(i, except);
        }
    }

    /// <summary>One slot of <see cref="QueueTableExcept"/>. Under the table lock.</summary>
    private void QueueSlotExceptLocked(int i, byte except)
    {
        ref var e = ref _table.EntryAt(i, out _);
        if (Unsafe.IsNullRef(ref e))
        {
            return;
        }

        bool tombstone = (e.Status & ConnectionStatus.Tombstone) != 0;
        if (e.Owner != except && (tombstone || e.Owner != MemberId || (e.Status & ConnectionStatus.Announced) != 0))
        {
            Enqueue(ref e, i);
        }
    }

    /// <summary>
    /// A Standby that follows <paramref name="active"/> while it still hears another, lower-ranked Active (a split brain
    /// seen from the side: a one-way cut, or a partition only partly healed) relays every change it applies from either
    /// Active to both. The one re-send of <see cref="BeginHandover"/> covers the table at that moment only; the other
    /// Active keeps serving and writing until it steps down or dies, and the member this one follows may not hear it at
    /// all (simulator seed 3809); and if the followed one dies first, the other takes the traffic, so it must hold what
    /// the followed one wrote meanwhile (seeds 17161, 21717, 22741). Each applies what is newer by version, so its own
    /// changes coming back cost one stale record each. Control tick.
    /// </summary>
    internal void BeginRelay(byte active)
    {
        _handoverWinner = active;
        _handingOver = true;
        if (!_relaying)
        {
            // Each Active may lack what the other wrote before this Standby started relaying (a lossy link, a one-way
            // cut; simulator seed 16962: a member promoted beside the Active it could barely hear): the next control tick
            // re-sends this member's whole replica once, to both.
            _relayWalkDue = true;
            _relaying = true;
        }
    }

    /// <summary>Control tick: the one re-send of the replica that a relay starts with (see <see cref="BeginRelay"/>).</summary>
    private void RelayWalkIfDue()
    {
        if (_relayWalkDue && _relaying)
        {
            _relayWalkDue = false;
            QueueTableExcept(0);
            SignalSender();
        }
    }

    /// <summary>
    /// Standby, per data datagram: the Active it follows when <paramref name="sender"/> is another member (else 0). Data
    /// from a member other than the followed Active is a split brain this Standby may not have seen yet in its views (the
    /// other Active's heartbeats lost or not yet heard, a link just healed): if the followed Active cannot hear that
    /// member, this Standby is the only path for those changes, and if the sender dies first the followed Active takes
    /// the traffic without them (simulator seeds 11964, 16962, 20208, 29294). The changes it applies from such a sender
    /// are relayed as under <see cref="BeginRelay"/>; the controller ends the relay on its next tick once no second Active
    /// is in view, and what was queued drains as a handover.
    /// </summary>
    private byte RelayTarget(byte sender)
    {
        if (sender == 0 || !_relaysUnfollowed)
        {
            return 0;
        }

        byte followed = FollowedActive();
        return followed == sender ? (byte)0 : followed;
    }

    /// <summary>Under the table lock, applying a newer change from a member other than the followed Active: relay it (see <see cref="RelayTarget"/>).</summary>
    private bool StartRelayLocked()
    {
        byte to = _relayTo;
        if (to == 0 || !_relaysUnfollowed)
        {
            return false; // (re-read under the table lock: the member may have left Standby since the datagram began)
        }

        BeginRelay(to);
        return true;
    }

    /// <summary>
    /// Set by membership: true while this member is a Standby in high availability, the only state in which it relays
    /// what it applies from a member other than the Active it follows (<see cref="RelayTarget"/>; in load sharing every
    /// member is Active and writes). Leaving that state ends any relay, under the table lock, so a datagram applied
    /// across the change cannot leave an Active relaying.
    /// </summary>
    internal bool RelaysUnfollowed
    {
        get => _relaysUnfollowed;
        set
        {
            lock (_tableLock)
            {
                _relaysUnfollowed = value;
                if (!value)
                {
                    _relaying = false;
                    _relayWalkDue = false;
                }
            }
        }
    }

    /// <summary>The split brain this Standby relayed across is over (see <see cref="BeginRelay"/>).</summary>
    internal void EndRelay() => _relaying = false;

    /// <summary>True while this Standby relays another Active's changes to the one it follows.</summary>
    internal bool Relaying => _relaying;

    /// <summary>
    /// What <paramref name="peer"/>'s current life acknowledged of this member's data stream (0 if nothing in this
    /// epoch), and the last data sequence this member sent: the peer is behind while the first is below the second.
    /// </summary>
    internal (ulong Acked, ulong Sent) AckStatus(byte peer)
    {
        ulong sent = LastDataSequence;
        foreach (var p in _peers)
        {
            if (p.MemberId == peer)
            {
                return (Volatile.Read(ref p.AckedEpoch) == Epoch ? Volatile.Read(ref p.AckedThrough) : 0, sent);
            }
        }

        return (0, sent);
    }

    /// <summary>True while a handover's entries wait for the sender.</summary>
    internal bool HandoverQueued => _handingOver && (Volatile.Read(ref _pendingCount) != 0 || HandoverWalkUnderway);

    /// <summary>The handover ended (this member stepped down, or it keeps the role after all, or a Standby's queue drained).</summary>
    internal void EndHandover()
    {
        _handingOver = false;
        Volatile.Write(ref _handoverWalkCursor, -1);
    }

    /// <summary>Sender, while handing over: a live replica that is pending goes out too, unless the winner wrote it (while relaying, also then).</summary>
    private bool SendsReplicaInHandover(byte owner) => _handingOver && (owner != _handoverWinner || _relaying);

    /// <summary>
    /// True when nothing waits for the sender and <paramref name="peer"/>'s current life acknowledged every data sequence
    /// this member sent (so it holds everything queued by <see cref="BeginHandover"/> and every change since).
    /// </summary>
    internal bool HandedOverTo(byte peer)
    {
        if (Volatile.Read(ref _pendingCount) != 0 || HandoverWalkUnderway)
        {
            return false;
        }

        ulong last = LastDataSequence;
        if (last == 0)
        {
            return true; // this life never sent a change: nothing to hand over
        }

        foreach (var p in _peers)
        {
            if (p.MemberId == peer)
            {
                return Volatile.Read(ref p.AckedEpoch) == Epoch && Volatile.Read(ref p.AckedThrough) >= last;
            }
        }

        return false;
    }
}
