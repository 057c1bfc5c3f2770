using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Membership;
using ClusterSync.Protocol;
using ClusterSync.Security;
using ClusterSync.Table;

namespace ClusterSync.Engine;

/// <summary>
/// Anti-entropy (Protocol/README.md, "Anti-entropy"): replicas are proven equal, not assumed. Every
/// <see cref="SyncEngineOptions.AntiEntropyInterval"/> the Active sends each live Standby the digests of the 64 top
/// ranges of the key space (a count and an XOR of (key, version) hashes per range, over the live entries whose version
/// is at or below a cutoff, so changes in flight do not count). The cutoff is a version, not a time: the newest version
/// the Active's clock had reached <see cref="SyncEngineOptions.AntiEntropySettle"/> ago by its monotonic clock. Entry
/// versions are replicated exactly, so both sides count the same entries whatever their wall clocks say (a cutoff in
/// wall-clock time left every entry written under a clock ahead of the Active's uncounted, and its divergence
/// unrepaired, until the clocks met: simulator seed 199). The Standby compares them with its own and asks for the children
/// of the ranges that differ; the Active answers with the children's digests, or, for a range small enough to list,
/// with every entry in it. The Standby applies those by version and removes what it holds in that range and the list
/// does not name (ghosts). Equal tables cost one message per Standby and one table walk on each side.
/// </summary>
/// <remarks>
/// The receiver thread only queues anti-entropy messages; the control tick does the table walks (chunked, 4,096 slots
/// per hold of the table lock) and answers, a few messages per tick.
/// </remarks>
public sealed partial class SyncEngine
{
    private const ulong RangeSeed = 0xA17E_E17B_5EED_0001UL;
    private const int AntiEntropyWorkPerTick = 8;
    // After: the apply backlog's tail when the message was queued; it is handled once the records received before it are
    // applied (SyncEngine.ApplyBacklog.cs), as when the receiver applied them before queueing.
    private readonly ConcurrentQueue<(PeerState Peer, MessageType Type, byte[] Body, long After)> _antiEntropyWork = new();
    private long _lastAntiEntropyTimestamp;

    // (monotonic timestamp, newest version then), one per control tick, younger than the settle time; the newest one
    // that aged past it is _settledVersion, the cutoff of a check. (At most settle / ack interval samples.)
    private readonly Queue<(long Timestamp, ulong Version)> _versionSamples = new();
    private ulong _settledVersion;
    private bool _settleReached; // a version sample has aged past the settle time (the engine ran that long)
    private long _cutoffAtLastRoot; // Standby: its own cutoff when the last root digest came (AheadOfCutoff)

    /// <summary>The 64-bit hash that places a key in the anti-entropy ranges (the same on every member).</summary>
    internal static ulong RangeHash(in ConnectionKey key) => key.Hash64(RangeSeed);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool InRange(ulong hash, byte depth, ulong prefix)
        => depth == 0 || hash >> (64 - (AntiEntropyMessages.BitsPerLevel * depth)) == prefix;

    /// <summary>
    /// Counted by anti-entropy: live, versioned at or below the cutoff, and replicated. On the Active, its own entries
    /// count once announced (one still waiting for its sync delay is not replicated yet). On a Standby every entry is a
    /// replica, whoever it names as owner: one that names this member came from its own earlier life (or its time as
    /// Active) through a full sync, and must be found and removed like any other ghost (simulator seed 385).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CountsForAntiEntropy(in TableEntry e, long cutoff, bool replica)
        => (e.Status & ConnectionStatus.Tombstone) == 0 && e.Version <= (ulong)cutoff
           && (replica || e.Owner != MemberId || (e.Status & ConnectionStatus.Announced) != 0);

    /// <summary>Control tick: notes the newest version now; the newest sample at least the settle time old becomes the cutoff.</summary>
    private void SampleVersion(long now)
    {
        ulong version;
        lock (_tableLock)
        {
            version = _clock.Current;
        }

        _versionSamples.Enqueue((now, version));
        long settleMs = (long)_options.AntiEntropySettle.TotalMilliseconds;
        while (_versionSamples.TryPeek(out var oldest) && Elapsed(oldest.Timestamp, now, _time) >= settleMs)
        {
            _settledVersion = _versionSamples.Dequeue().Version;
            _settleReached = true;
        }
    }

    /// <summary>The cutoff of a check: the newest version at least the settle time old (0: nothing settled yet).</summary>
    private long AntiEntropyCutoff()
    {
        if (_options.AntiEntropySettle == TimeSpan.Zero)
        {
            lock (_tableLock)
            {
                return (long)_clock.Current;
            }
        }

        return (long)_settledVersion;
    }

    /// <summary>
    /// Standby, at a root digest: this member's own cutoff (<see cref="AntiEntropyCutoff"/>) when the Active's cutoff is
    /// still below the one this member had at the previous root digest, else null. Every version this replica had settled
    /// an interval ago came from changes the Active's clock should have reached by its own settled point; one that it
    /// has not reached was written under a clock ahead of the Active's and never reached the Active (a dead Active's
    /// last changes, a clock that jumped ahead), and it stays uncounted until the Active's clock gets there, which may be
    /// minutes when the Active's versions only count up (its wall clock behind the versions it observed).
    /// </summary>
    private long? AheadOfCutoff(long cutoffMs)
    {
        long own = AntiEntropyCutoff();
        long previous = _cutoffAtLastRoot;
        _cutoffAtLastRoot = own;
        return previous > cutoffMs && own > cutoffMs ? own : null;
    }

    /// <summary>
    /// Digests of the descendants <paramref name="levels"/> levels below range (<paramref name="depth"/>, <paramref name="prefix"/>):
    /// <c>64^levels</c> digests, by descendant index. Walks the table in chunks.
    /// </summary>
    internal void ComputeRangeDigests(byte depth, ulong prefix, long cutoffMs, int levels, Span<RangeDigest> digests, bool replica = false)
    {
        digests.Clear();
        int shift = 64 - (AntiEntropyMessages.BitsPerLevel * (depth + levels));
        ulong mask = (1UL << (AntiEntropyMessages.BitsPerLevel * levels)) - 1;
        foreach (int i in WalkSlots())
        {
            ref var e = ref _table.EntryAt(i, out var key);
            if (Unsafe.IsNullRef(ref e) || !CountsForAntiEntropy(e, cutoffMs, replica))
            {
                continue;
            }

            ulong h = RangeHash(key);
            if (!InRange(h, depth, prefix))
            {
                continue;
            }

            ref var d = ref digests[(int)((h >> shift) & mask)];
            d = new RangeDigest(d.Count + 1, d.Xor ^ Membership.TableDigestAccumulator.EntryHash(key, e.Version));
        }
    }

    /// <summary>Control tick: the Active starts a check of every live Standby each anti-entropy interval; queued messages are answered.</summary>
    private void RunAntiEntropy(long now)
    {
        SampleVersion(now);
        for (int n = 0; n < AntiEntropyWorkPerTick && _antiEntropyWork.TryPeek(out var next)
             && next.After <= Volatile.Read(ref _backlogHead) && _antiEntropyWork.TryDequeue(out var work); n++)
        {
            switch (work.Type)
            {
                case MessageType.Digest:
                    AnswerDigest(work.Peer, work.Body);
                    break;
                case MessageType.DigestRequest:
                    AnswerRequest(work.Peer, work.Body);
                    break;
                case MessageType.RangeEntries:
                    RepairRange(work.Peer, work.Body);
                    break;
            }
        }

        if (_options.AntiEntropyInterval == TimeSpan.Zero || AdvertisedState != (byte)MemberState.Active)
        {
            return;
        }

        if (_lastAntiEntropyTimestamp != 0 && Elapsed(_lastAntiEntropyTimestamp, now, _time) < (long)_options.AntiEntropyInterval.TotalMilliseconds)
        {
            return;
        }

        _lastAntiEntropyTimestamp = now;
        StartAntiEntropyCheck(now);
    }

    /// <summary>Sends the root digests to every live Standby (tests call it directly). Returns the Standbys checked.</summary>
    internal int StartAntiEntropyCheck(long now)
    {
        RangeDigest[]? digests = null;
        long cutoffMs = AntiEntropyCutoff();
        if (cutoffMs <= 0)
        {
            if (!_settleReached && _options.AntiEntropySettle != TimeSpan.Zero)
            {
                return 0; // nothing has settled yet (just started): the next interval checks
            }

            // This Active never wrote or saw a version (an empty table, a new cluster formed after churn stopped), yet a
            // Standby may hold entries from an earlier life of the cluster: check at the lowest cutoff, so the Standby
            // asks at its own (AheadOfCutoff) and its ghosts are found (simulator seeds 2436, 5369).
            cutoffMs = 1;
        }

        int checkedPeers = 0;
        RangeDigest? templates = null;
        bool templatesComputed = false;
        foreach (var p in _peers)
        {
            if (!IsLive(p, now) || Volatile.Read(ref p.LastHeardTimestamp) == 0 || Volatile.Read(ref p.LastState) != (byte)MemberState.Standby)
            {
                continue;
            }

            if (digests is null)
            {
                digests = new RangeDigest[AntiEntropyMessages.Children];
                ComputeRangeDigests(0, 0, cutoffMs, 1, digests);
            }

            if (!templatesComputed)
            {
                templates = TemplateDigest(cutoffMs);
                templatesComputed = true;
            }

            SendDigest(p, cutoffMs, 0, 0, digests, templates);
            _counters.AntiEntropyChecks++;
            checkedPeers++;
        }

        return checkedPeers;
    }

    private void SendDigest(PeerState peer, long cutoffMs, byte depth, ulong prefix, ReadOnlySpan<RangeDigest> children, RangeDigest? templates = null)
    {
        Span<byte> body = stackalloc byte[AntiEntropyMessages.RootDigestWithTemplatesSize];
        int n = AntiEntropyMessages.WriteDigest(body, peer.MemberId, cutoffMs, depth, prefix, children, templates);
        SendControl(MessageType.Digest, body[..n], peer.PeerIndex);
    }

    /// <summary>
    /// The digest of the live templates for a root digest (docs/templates.md, "Anti-entropy"): null while this member has
    /// never held a template (the root digest is then what it was before templates). Counted: those versioned at or
    /// below the cutoff whose copy a replica still holds <see cref="SyncEngineOptions.AntiEntropySettle"/> from now (the
    /// expiry of the last record sent, which every member computes alike), so one expiring meanwhile does not make
    /// equal members look different.
    /// </summary>
    private RangeDigest? TemplateDigest(long cutoffMs)
    {
        long until = NowMs() + (long)_options.AntiEntropySettle.TotalMilliseconds;
        lock (_tableLock)
        {
            return _templateTracker?.Digest((ulong)cutoffMs, until);
        }
    }

    /// <summary>Receiver thread: an authenticated anti-entropy message is checked, copied and left for the control tick.</summary>
    private DropReason QueueAntiEntropy(PeerState peer, MessageType type, ReadOnlySpan<byte> body)
    {
        bool ok = type switch
        {
            MessageType.Digest => AntiEntropyMessages.TryReadDigest(body, out ushort t, out _, out _, out _, stackalloc RangeDigest[AntiEntropyMessages.Children]) && t == MemberId,
            MessageType.DigestRequest => AntiEntropyMessages.TryReadRequest(body, out ushort t, out _, out _, out _, out _) && t == MemberId,
            _ => AntiEntropyMessages.TryReadEntriesHead(body, out ushort t, out _, out _, out _, out _) && t == MemberId,
        };
        if (!ok)
        {
            return DropReason.Malformed;
        }

        if (_antiEntropyWork.Count < 1024)
        {
            _antiEntropyWork.Enqueue((peer, type, body.ToArray(), Volatile.Read(ref _backlogTail)));
        }

        return DropReason.None;
    }

    /// <summary>
    /// Standby: true when <paramref name="active"/> is the highest-ranked live Active this member hears, the one it follows.
    /// In a split brain a lower-ranked Active does not hear the other (it would step down), so its table lacks what the
    /// other served: repairing from its listing would remove those connections from this Standby as ghosts, and the
    /// handover it re-sends to the winner would then miss them (simulator seed 4392: a one-way cut m1→m2, m2 Active
    /// beside m1; m3 took 29 of m1's connections for ghosts on m2's listing, and the traffic went to m2 without them).
    /// </summary>
    private bool IsFollowedActive(byte active) => FollowedActive() == active;

    /// <summary>The highest-ranked live Active this member hears (0 if none): the one a Standby follows.</summary>
    private byte FollowedActive()
    {
        Span<MemberView> views = stackalloc MemberView[_peers.Length];
        int n = GetPeerViews(views);
        byte best = 0;
        MemberView bestView = default;
        foreach (var v in views[..n])
        {
            if (v.Alive && v.State == MemberState.Active && (best == 0 || v.Outranks(bestView)))
            {
                best = v.Id;
                bestView = v;
            }
        }

        return best;
    }

    /// <summary>Standby: compares a range's children with its own and asks for those that differ.</summary>
    private void AnswerDigest(PeerState peer, byte[] body)
    {
        if (AdvertisedState != (byte)MemberState.Standby || !IsFollowedActive(peer.MemberId))
        {
            return;
        }

        Span<RangeDigest> theirs = stackalloc RangeDigest[AntiEntropyMessages.Children];
        AntiEntropyMessages.TryReadDigest(body, out _, out long cutoffMs, out byte depth, out ulong prefix, theirs, out var theirTemplates);
        // The templates are compared at the Active's cutoff, as it computed them (the ranges may move to this member's own below).
        bool askTemplates = theirTemplates is { } tt && (TemplateDigest(cutoffMs) ?? default) != tt;
        if (askTemplates)
        {
            _counters.AntiEntropyTemplateMismatches++;
        }

        if (depth == 0 && AheadOfCutoff(cutoffMs) is long own)
        {
            // This Standby holds versions, settled here an interval ago, that the Active's cutoff has not reached: written
            // under a wall clock ahead of the Active's and never seen by the Active, they stay uncounted on both sides,
            // so a ghost among them is never found (simulator seeds 528, 802: a clock 70 s, 22 s ahead). Compare at this
            // member's own cutoff and ask at it: the Active observes it (its version clock moves past every version
            // this replica holds) and answers at it.
            cutoffMs = own;
        }

        var mine = new RangeDigest[AntiEntropyMessages.Children];
        ComputeRangeDigests(depth, prefix, cutoffMs, 1, mine, replica: true);
        ulong mask = 0;
        for (int i = 0; i < mine.Length; i++)
        {
            if (mine[i] != theirs[i])
            {
                mask |= 1UL << i;
            }
        }

        if (depth == 0)
        {
            _counters.AntiEntropyRootsCompared++;
            if (mask != 0)
            {
                _counters.AntiEntropyMismatches++;
                Log.AntiEntropyMismatch(_logger, peer.MemberId, BitOperations.PopCount(mask));
            }
        }

        if (mask != 0 || askTemplates)
        {
            Span<byte> request = stackalloc byte[AntiEntropyMessages.RequestWithTemplatesSize];
            int n = AntiEntropyMessages.WriteRequest(request, peer.MemberId, cutoffMs, depth, prefix, mask, askTemplates);
            SendControl(MessageType.DigestRequest, request[..n], peer.PeerIndex);
        }
    }

    /// <summary>Active: for each differing child, its children's digests, or (small enough to list) every entry in it.</summary>
    private void AnswerRequest(PeerState peer, byte[] body)
    {
        if (AdvertisedState != (byte)MemberState.Active)
        {
            return;
        }

        AntiEntropyMessages.TryReadRequest(body, out _, out long cutoffMs, out byte depth, out ulong prefix, out ulong mask, out bool templates);
        bool resend = false;
        lock (_tableLock)
        {
            // A Standby asks at its own cutoff when it holds versions this member's clock never reached (AnswerDigest):
            // the version clock moves past them, so this member's next changes are newer and its next checks count them.
            _clock.Observe((ulong)cutoffMs);

            // Its templates differ: every live one goes out again on the delta stream (applied by version, idempotent).
            if (templates && _templateTracker is { LiveCount: > 0 } t && t.QueueAll() > 0)
            {
                _templatesQueued = true;
                _counters.AntiEntropyTemplateRepairs++;
                resend = true;
            }
        }

        if (resend)
        {
            SignalSender();
        }

        if (mask == 0)
        {
            return;
        }

        int capacity = _options.Mtu - PacketHeader.Size - PacketProtection.TagSize - AntiEntropyMessages.EntriesHeadSize;
        int listable = Math.Max(1, capacity / RecordCodec.MaxRecordSize);
        byte childDepth = (byte)(depth + 1);
        var grand = new RangeDigest[AntiEntropyMessages.Children * AntiEntropyMessages.Children];
        ComputeRangeDigests(depth, prefix, cutoffMs, 2, grand);
        ulong listMask = 0;
        for (ulong bits = mask; bits != 0; bits &= bits - 1)
        {
            int child = BitOperations.TrailingZeroCount(bits);
            var children = grand.AsSpan(child * AntiEntropyMessages.Children, AntiEntropyMessages.Children);
            long count = 0;
            foreach (var d in children)
            {
                count += d.Count;
            }

            if (count <= listable || childDepth >= AntiEntropyMessages.MaxDepth)
            {
                listMask |= 1UL << child;
            }
            else
            {
                SendDigest(peer, cutoffMs, childDepth, (prefix << AntiEntropyMessages.BitsPerLevel) | (uint)child, children);
            }
        }

        if (listMask != 0)
        {
            SendRangeEntries(peer, cutoffMs, depth, prefix, listMask, listable, grand);
        }
    }

    /// <summary>
    /// Active: one RangeEntries message per child in <paramref name="childMask"/> of range (depth, prefix), naming every live
    /// replicated entry in it, also those changed after the cutoff (so the Standby removes nothing the Active holds). A
    /// child with more entries than a message lists gets its children's digests instead (<paramref name="grand"/>).
    /// </summary>
    private void SendRangeEntries(PeerState peer, long cutoffMs, byte depth, ulong prefix, ulong childMask, int listable, RangeDigest[] grand)
    {
        var lists = new List<ConnectionEvent>?[AntiEntropyMessages.Children];
        int shift = 64 - (AntiEntropyMessages.BitsPerLevel * (depth + 1));
        foreach (int i in WalkSlots())
        {
            ref var e = ref _table.EntryAt(i, out var key);
            if (Unsafe.IsNullRef(ref e) || !CountsForAntiEntropy(e, long.MaxValue, replica: false))
            {
                continue;
            }

            ulong h = RangeHash(key);
            int child = (int)((h >> shift) & 63);
            if (!InRange(h, depth, prefix) || (childMask & (1UL << child)) == 0)
            {
                continue;
            }

            var list = lists[child] ??= [];
            list.Add(new ConnectionEvent { Kind = ConnectionEventKind.Update, Key = key, Entry = _table.Read(key, e) });
        }

        var buffer = new byte[_options.Mtu];
        for (ulong bits = childMask; bits != 0; bits &= bits - 1)
        {
            int child = BitOperations.TrailingZeroCount(bits);
            var list = lists[child];
            ulong childPrefix = (prefix << AntiEntropyMessages.BitsPerLevel) | (uint)child;
            if ((list?.Count ?? 0) > listable && depth + 1 < AntiEntropyMessages.MaxDepth)
            {
                // Changes since the cutoff made it too long to list: descend instead.
                SendDigest(peer, cutoffMs, (byte)(depth + 1), childPrefix, grand.AsSpan(child * AntiEntropyMessages.Children, AntiEntropyMessages.Children));
                continue;
            }

            // At the deepest level (54 hash bits shared) a longer list cannot occur in practice; what fits is sent.
            int count = Math.Min(list?.Count ?? 0, listable);
            int o = AntiEntropyMessages.EntriesHeadSize;
            for (int i = 0; i < count; i++)
            {
                o += RecordCodec.Write(buffer.AsSpan(o), list![i]);
            }

            AntiEntropyMessages.WriteEntriesHead(buffer, peer.MemberId, cutoffMs, (byte)(depth + 1), childPrefix, (ushort)count);
            SendControl(MessageType.RangeEntries, buffer.AsSpan(0, o), peer.PeerIndex);
            _counters.AntiEntropyRangesSent++;
        }
    }

    /// <summary>
    /// Standby: applies the entries of a differing range by version and removes the counted entries it holds in that
    /// range that the list does not name (tombstones at their own version, so a newer change still wins).
    /// </summary>
    private void RepairRange(PeerState peer, byte[] body)
    {
        if (AdvertisedState != (byte)MemberState.Standby || !IsFollowedActive(peer.MemberId))
        {
            return;
        }

        AntiEntropyMessages.TryReadEntriesHead(body, out _, out long cutoffMs, out byte depth, out ulong prefix, out ushort count);
        ReadOnlySpan<byte> records = body.AsSpan(AntiEntropyMessages.EntriesHeadSize);
        var listed = new ConnectionEvent[count];
        if (RecordCodec.ReadMany(ref records, listed) != count || records.Length != 0)
        {
            return;
        }

        var names = new HashSet<ConnectionKey>(count);
        long nowMs = NowMs();
        int repaired = 0;
        lock (_tableLock)
        {
            foreach (ref readonly var r in listed.AsSpan())
            {
                names.Add(r.Key);
                if (!InRange(RangeHash(r.Key), depth, prefix))
                {
                    continue;
                }

                if (ApplyVersionedLocked(r, nowMs))
                {
                    repaired++;
                    continue;
                }

                // This member holds a newer version than the Active lists, and one settled by the cutoff (not a change
                // of the Active's that overtook the listing): a change the Active never had (the last delta of a dead
                // Active that reached this Standby only). The Active's table is what its data plane carries: take it
                // (simulator seed 78: two connections stayed stale on a Standby for good).
                // Or it holds a tombstone at exactly the listed version: a repair of its own removed the entry as a ghost
                // at that version (a destroy is always newer than what it ends), and the Active holds it live after all
                // (it came back to it through a handover or a Standby's re-send): at an equal version nothing else
                // would ever bring it back.
                ref var mine = ref _table.Find(r.Key);
                if (!Unsafe.IsNullRef(ref mine)
                    && ((mine.Version > r.Entry.Version && mine.Version <= (ulong)cutoffMs)
                        || (mine.Version == r.Entry.Version && (mine.Status & ConnectionStatus.Tombstone) != 0 && r.Kind != ConnectionEventKind.Destroy)))
                {
                    mine.Version = 0;
                    if (ApplyVersionedLocked(r, nowMs))
                    {
                        repaired++;
                    }
                }
            }
        }

        foreach (int i in WalkSlots())
        {
            ref var e = ref _table.EntryAt(i, out var key);
            if (Unsafe.IsNullRef(ref e) || !CountsForAntiEntropy(e, cutoffMs, replica: true)
                || !InRange(RangeHash(key), depth, prefix) || names.Contains(key))
            {
                continue;
            }

            MakeTombstone(ref e, e.Version, nowMs);
            _table.ClearCounters(key);
            repaired++;
        }

        _counters.AntiEntropyRangesRepaired++;
        _counters.AntiEntropyEntriesRepaired += repaired;
        if (repaired > 0)
        {
            Log.AntiEntropyRepaired(_logger, depth, prefix, repaired);
        }
    }
}
