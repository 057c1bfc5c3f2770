using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Table;

namespace ClusterSync.Engine;

/// <summary>Where a snapshot was cut: the source's epoch and the last delta sequence it had sent before the walk began.</summary>
internal readonly record struct SnapshotCut(byte Member, ulong Epoch, ulong Sequence, long Total);

/// <summary>Engine access for full sync (FullSync/README.md): cutting and walking a snapshot, applying one, covering the delta window.</summary>
public sealed partial class SyncEngine
{
    /// <summary>
    /// Cuts a snapshot: the delta sequence is read before any slot is walked, so every change sent with a sequence
    /// at or below it is already in the table the walk sees (the table is written before a change is queued).
    /// </summary>
    internal SnapshotCut CutSnapshot()
    {
        ulong sequence = LastDataSequence;
        Interlocked.MemoryBarrier();
        int total;
        lock (_tableLock)
        {
            total = _table.Count;
            QueueTemplatesAtCutLocked(); // templates ride the delta stream after the cut (docs/templates.md)
        }

        if (_templatesQueued)
        {
            SignalSender();
        }

        return new SnapshotCut(MemberId, Epoch, sequence, total);
    }

    /// <summary>
    /// Copies the next entries of a snapshot walk into <paramref name="destination"/>, walking at most
    /// <c>destination.Length</c> slots from <paramref name="cursor"/> under the table lock (short holds, so the
    /// engine keeps serving traffic). Live entries become Update records, tombstones Destroy records; connections
    /// this member has not announced (a delay still running, a never-sync class) are skipped, as delta sync skips
    /// them. Returns the records copied; the walk is over when <paramref name="cursor"/> reaches -1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int CopySnapshotChunk(ref int cursor, Span<ConnectionEvent> destination)
    {
        if (cursor < 0)
        {
            return 0;
        }

        int n = 0;
        lock (_tableLock)
        {
            int limit = _table.SlotLimit;
            int end = (int)Math.Min((long)cursor + destination.Length, limit);
            byte me = MemberId;
            for (int i = cursor; i < end; i++)
            {
                if (ReadSnapshotSlotLocked(i, me, ref destination[n]))
                {
                    n++;
                }
            }

            cursor = end >= limit ? -1 : end;
        }

        return n;
    }

    /// <summary>
    /// The record a full sync sends for table slot <paramref name="slot"/>: a tombstone as a destroy, a live entry as an
    /// update with its counters; false for an empty slot and for this member's own connections not yet announced (still
    /// inside their sync delay, or never to be synced). Under the table lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ReadSnapshotSlotLocked(int slot, byte me, ref ConnectionEvent r)
    {
        ref var e = ref _table.EntryAt(slot, out var key);
        if (Unsafe.IsNullRef(ref e))
        {
            return false;
        }

        var status = e.Status;
        if ((status & ConnectionStatus.Tombstone) != 0)
        {
            r.Kind = ConnectionEventKind.Destroy;
            r.HasCounters = false;
        }
        else
        {
            if (e.Owner == me && (status & ConnectionStatus.Announced) == 0)
            {
                return false;
            }

            r.Kind = ConnectionEventKind.Update;
            r.HasCounters = _table.TryGetCounters(key, out r.Counters);
        }

        r.Key = key;
        r.Entry = _table.Read(key, e);
        return true;
    }

    /// <summary>
    /// As <see cref="CopySnapshotChunk"/>, but encodes each record straight into <paramref name="destination"/> from
    /// <paramref name="position"/> (no staging array: one record at a time through a local, so a million-entry walk
    /// touches no memory beyond the table and the frame). Walks at most <paramref name="maxSlots"/> slots under one
    /// hold of the table lock and stops early, before a slot, once fewer than <see cref="Protocol.RecordCodec.MaxRecordSize"/>
    /// bytes are left (the frame is full: <paramref name="cursor"/> stays at that slot). Returns the records written;
    /// the walk is over when <paramref name="cursor"/> reaches -1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int EncodeSnapshotChunk(ref int cursor, Span<byte> destination, ref int position, int maxSlots)
    {
        if (cursor < 0)
        {
            return 0;
        }

        int n = 0;
        int p = position;
        var r = default(ConnectionEvent);
        lock (_tableLock)
        {
            int limit = _table.SlotLimit;
            int end = (int)Math.Min((long)cursor + maxSlots, limit);
            byte me = MemberId;
            int i = cursor;
            for (; i < end && p + Protocol.RecordCodec.MaxRecordSize <= destination.Length; i++)
            {
                if (ReadSnapshotSlotLocked(i, me, ref r))
                {
                    p += Protocol.RecordCodec.Write(destination[p..], r);
                    n++;
                }
            }

            cursor = i >= limit ? -1 : i;
        }

        position = p;
        return n;
    }

    /// <summary>
    /// Applies snapshot records with the delta-sync rule (only a newer version wins), in groups under the table
    /// lock so delta sync interleaves. Returns how many changed the table (the rest were stale).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal int ApplySnapshot(ReadOnlySpan<ConnectionEvent> records)
    {
        // Groups of 256 per lock hold (tens of microseconds, so delta sync interleaves); the prefetch pipeline runs
        // over the whole span, across group boundaries, so the table's cache misses keep overlapping.
        const int Group = 256;
        long nowMs = NowMs();
        int applied = 0;
        byte me = MemberId;
        for (int from = 0; from < records.Length; from += Group)
        {
            int to = Math.Min(from + Group, records.Length);
            lock (_tableLock)
            {
                if (from == 0)
                {
                    PrefetchBuckets(records, 0, PrefetchDistance * 2);
                }

                for (int i = from; i < to; i++)
                {
                    PrefetchAhead(records, i);
                    ref readonly var r = ref records[i];
                    if (!ApplyVersionedLocked(r, nowMs, snapshot: true))
                    {
                        continue;
                    }

                    applied++;
                    if (r.Kind != ConnectionEventKind.Destroy && r.Entry.Owner == me)
                    {
                        // Our own connection from an earlier life (we restarted): it was announced, so its
                        // next change must be sent again.
                        ref var e = ref _table.Find(r.Key);
                        e.Status |= ConnectionStatus.Announced;
                    }
                }
            }
        }

        return applied;
    }

    /// <summary>
    /// Tells the delta receiver that a full sync from <paramref name="peer"/> covered its stream up to
    /// <paramref name="sequence"/> of <paramref name="epoch"/>: those sequences are written off without raising
    /// resync needed. An epoch not yet adopted (no packet of it authenticated yet) is remembered and applied on
    /// adoption; an older epoch is ignored (the peer restarted since the cut). Returns false when ignored.
    /// </summary>
    internal bool MarkSynchronizedThrough(byte peer, ulong epoch, ulong sequence)
    {
        var state = _peersById[peer];
        if (state is null || epoch == 0)
        {
            return false;
        }

        bool covered = false;
        lock (state.Sync)
        {
            if (epoch == state.Epoch && sequence > state.Data.Cumulative)
            {
                state.Data.SkipThrough(sequence);
                covered = true;
            }
        }

        if (covered)
        {
            // Acknowledge at once: the peer stops resending what we NACKed before the cover.
            SendAck(state, force: true);
        }

        lock (state.Sync)
        {
            if (epoch == state.Epoch)
            {
                if (sequence > state.Data.Cumulative)
                {
                    state.Data.SkipThrough(sequence);
                }

                return true;
            }

            if (epoch > state.Epoch)
            {
                if (epoch > state.PendingCoverEpoch || (epoch == state.PendingCoverEpoch && sequence > state.PendingCoverSequence))
                {
                    state.PendingCoverEpoch = epoch;
                    state.PendingCoverSequence = sequence;
                }

                return true;
            }

            return false;
        }
    }

    /// <summary>
    /// A full sync from <paramref name="peer"/> covered its delta stream (at Begin) and then failed: the written-off
    /// sequences were not delivered, so resync needed is raised again (counted, logged, the event fired on the
    /// calling thread, outside every lock) and the joiner pulls again.
    /// </summary>
    internal void RaiseResyncAfterFailedPull(byte peer)
    {
        Interlocked.Increment(ref _counters.ResyncNeeded);
        Log.ResyncNeeded(_logger, peer, 0, "a full sync that covered its delta stream failed");
        ResyncNeeded?.Invoke(peer, 0);
    }

    /// <summary>Called under the peer's lock when its epoch is adopted.</summary>
    private static void ApplyPendingCover(PeerState peer)
    {
        if (peer.PendingCoverEpoch == peer.Epoch && peer.PendingCoverSequence > 0)
        {
            peer.Data.SkipThrough(peer.PendingCoverSequence);
        }

        if (peer.PendingCoverEpoch <= peer.Epoch)
        {
            peer.PendingCoverEpoch = 0;
            peer.PendingCoverSequence = 0;
        }
    }

    // A full sync that replaces (FullSync/README.md, "Replace"): one bit per table slot that held a candidate entry when
    // the snapshot began; cleared when the snapshot names the entry or a newer change to it is applied. Table lock.
    private ulong[]? _replaceMarks;
    private long _replaceToken;
    private bool _replaceEnding; // EndReplace is walking the marks (table lock)

    /// <summary>
    /// Starts a full sync that replaces: every entry this member holds now that a snapshot may remove (see
    /// <see cref="EndReplace"/>) is marked (a bit per slot; no entry is copied), <see cref="SnapshotStep"/> slots per
    /// hold of the table lock. Called before the pull connects, so every change applied after the source cuts its
    /// snapshot clears its entry's mark (a change sent after the cut may arrive before the snapshot's Begin). A change
    /// applied between two steps is older than the cut: marking it is the same as marking it before it was applied
    /// (the snapshot names it, or it is removed as the source removed it). Returns a token for <see cref="EndReplace"/>;
    /// 0 when another replace is running (that pull then only merges).
    /// </summary>
    internal long BeginReplace()
    {
        ulong[] marks;
        long token;
        int limit;
        lock (_tableLock)
        {
            if (_replaceMarks is not null)
            {
                return 0;
            }

            limit = _table.SlotLimit;
            marks = new ulong[(limit + 63) / 64];
            _replaceMarks = marks; // from now on an applied change clears its entry's mark
            token = ++_replaceToken;
        }

        for (int from = 0; from < limit; from += SnapshotStep)
        {
            lock (_tableLock)
            {
                int to = Math.Min(Math.Min(limit, _table.SlotLimit), from + SnapshotStep);
                for (int i = from; i < to; i++)
                {
                    ref var e = ref _table.EntryAt(i, out _);
                    if (!Unsafe.IsNullRef(ref e) && (e.Status & ConnectionStatus.Tombstone) == 0 && e.Owner != MemberId)
                    {
                        marks[i >> 6] |= 1UL << (i & 63);
                    }
                }
            }

            TableWalkStepped?.Invoke();
        }

        return token;
    }

    /// <summary>
    /// Ends a full sync that replaces. With <paramref name="commit"/> (the snapshot arrived whole) every entry still
    /// marked, so named neither by the snapshot nor by a newer change since, becomes a tombstone at its own version
    /// (an older reordered update cannot bring it back; a newer one wins): the table equals the snapshot at the cut
    /// plus the changes since. Entries this member owns are never removed (its data plane is their authority), nor
    /// are those of a live Active peer other than the source (load sharing: that peer's own stream covers them).
    /// Without <paramref name="commit"/> nothing is removed. A token other than the running replace's does nothing.
    /// The marks are walked <see cref="SnapshotStep"/> slots per hold of the table lock; they stay in force until the
    /// last step, so a change applied between steps clears its mark and is kept. Returns the entries removed.
    /// </summary>
    internal int EndReplace(long token, bool commit, byte source)
    {
        Span<Membership.MemberView> views = stackalloc Membership.MemberView[_peers.Length];
        int nViews = GetPeerViews(views);
        views = views[..nViews];
        long nowMs = NowMs();
        int removed = 0;
        ulong[] marks;
        lock (_tableLock)
        {
            if (_replaceMarks is null || token != _replaceToken || _replaceEnding)
            {
                return 0;
            }

            marks = _replaceMarks;
            if (!commit)
            {
                _replaceMarks = null;
                return 0;
            }

            _replaceEnding = true;
        }

        const int WordsPerStep = SnapshotStep / 64;
        try
        {
            for (int w0 = 0; w0 < marks.Length; w0 += WordsPerStep)
            {
                lock (_tableLock)
                {
                    int limit = Math.Min(_table.SlotLimit, marks.Length * 64);
                    for (int w = w0; w < Math.Min(marks.Length, w0 + WordsPerStep); w++)
                    {
                        ulong bits = marks[w];
                        while (bits != 0)
                        {
                            int i = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                            bits &= bits - 1;
                            if (i >= limit)
                            {
                                break;
                            }

                            ref var e = ref _table.EntryAt(i, out var key);
                            if (Unsafe.IsNullRef(ref e) || (e.Status & ConnectionStatus.Tombstone) != 0 || e.Owner == MemberId
                                || (e.Owner != source && IsLiveActive(views, e.Owner)))
                            {
                                continue;
                            }

                            MakeTombstone(ref e, e.Version, nowMs);
                            _table.ClearCounters(key);
                            removed++;
                            if (AppliedObserver is { } observer)
                            {
                                var gone = new ConnectionEvent { Kind = ConnectionEventKind.Destroy, Key = key, Entry = _table.Read(key, e) };
                                observer(gone);
                            }
                        }
                    }
                }

                TableWalkStepped?.Invoke();
            }
        }
        finally
        {
            lock (_tableLock)
            {
                _replaceMarks = null;
                _replaceEnding = false;
            }
        }

        Interlocked.Add(ref _counters.ReplaceRemoved, removed);
        return removed;
    }

    private static bool IsLiveActive(ReadOnlySpan<Membership.MemberView> views, byte member)
    {
        foreach (var v in views)
        {
            if (v.Id == member)
            {
                return v.Alive && v.State == Membership.MemberState.Active;
            }
        }

        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ConfirmForReplaceLocked(int slot)
    {
        var marks = _replaceMarks!;
        if ((uint)(slot >> 6) < (uint)marks.Length)
        {
            marks[slot >> 6] &= ~(1UL << (slot & 63));
        }
    }

    /// <summary>The delta receive window's cumulative point for <paramref name="peer"/> (tests and status).</summary>
    internal (ulong Epoch, ulong Cumulative) ReceivedThrough(byte peer)
    {
        var state = _peersById[peer] ?? throw new ArgumentOutOfRangeException(nameof(peer));
        lock (state.Sync)
        {
            return (state.Epoch, state.Data.Cumulative);
        }
    }
}
