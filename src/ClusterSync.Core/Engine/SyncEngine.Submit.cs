using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Table;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    /// <summary>Applies one data-plane event to the local table and passes it through the policy gate.</summary>
    public void Submit(in ConnectionEvent change) => Submit(new ReadOnlySpan<ConnectionEvent>(in change));

    /// <summary>Applies a batch of data-plane events (one lock, one wake-up of the sender).</summary>
    public void Submit(ReadOnlySpan<ConnectionEvent> changes)
    {
        if (_catalog.ActivePlugin is { } plugin)
        {
            SubmitThroughPlugin(changes, plugin);
            return;
        }

        long nowMs = NowMs();
        bool queued = false;
        lock (_tableLock)
        {
            _counters.EventsSubmitted += changes.Length;
            PrefetchBuckets(changes, 0, PrefetchDistance * 2);
            for (int i = 0; i < changes.Length; i++)
            {
                // Software pipeline: buckets 2·D ahead, slots D ahead, so the table's cache misses overlap.
                PrefetchAhead(changes, i);
                queued |= SubmitLocked(changes[i], nowMs);
            }
        }

        if (queued && !TrySendInline())
        {
            SignalSender();
        }
    }

    private const int PrefetchDistance = 8;

    private void PrefetchBuckets(ReadOnlySpan<ConnectionEvent> changes, int from, int count)
    {
        int end = Math.Min(changes.Length, from + count);
        for (int i = from; i < end; i++)
        {
            _table.PrefetchBucket(changes[i].Key);
        }

        for (int i = from; i < Math.Min(end, from + PrefetchDistance); i++)
        {
            _table.PrefetchSlot(changes[i].Key);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchAhead(ReadOnlySpan<ConnectionEvent> changes, int i)
    {
        if (i + (2 * PrefetchDistance) < changes.Length)
        {
            _table.PrefetchBucket(changes[i + (2 * PrefetchDistance)].Key);
        }

        if (i + PrefetchDistance < changes.Length)
        {
            _table.PrefetchSlot(changes[i + PrefetchDistance].Key);
        }
    }

    private bool SubmitLocked(in ConnectionEvent change, long nowMs) => SubmitLocked(change, nowMs, NotClassified, default);

    private const byte NotClassified = 0xFF;

    /// <summary>
    /// Applies one data-plane event under the table lock. <paramref name="preClass"/> is the class a plugin gave a New
    /// event before the lock (<see cref="NotClassified"/>: the in-process classifier decides); <paramref name="control"/>
    /// the control connection a protocol plugin tied it to (default: none).
    /// </summary>
    private bool SubmitLocked(in ConnectionEvent change, long nowMs, byte preClass, in ConnectionKey control)
    {
        if (_units is not null && change.Kind == ConnectionEventKind.Destroy && _units.ContainsKey(change.Key))
        {
            return DestroyUnitLocked(change.Key, nowMs);
        }

        // A related connection of a live control connection: what the unit decides (before GetOrAdd moves entries).
        byte unitClass = NotClassified;
        bool unitAnnounced = false;
        if (control.Family != 0 && change.Kind == ConnectionEventKind.New && !control.Equals(change.Key))
        {
            ref var c = ref _table.Find(control);
            if (!Unsafe.IsNullRef(ref c) && (c.Status & ConnectionStatus.Tombstone) == 0 && c.Owner == MemberId)
            {
                unitClass = c.ServiceClass;
                unitAnnounced = (c.Status & ConnectionStatus.Announced) != 0;
            }
        }

        ref var e = ref _table.GetOrAdd(change.Key, out bool added, out int slot);
        if (change.Kind == ConnectionEventKind.Destroy)
        {
            ForgetRelatedLocked(change.Key);
            return DestroyLocked(ref e, added, slot, change.Key, nowMs);
        }

        bool newLife = added || (e.Status & ConnectionStatus.Tombstone) != 0;
        bool announced = !newLife && ((e.Status & ConnectionStatus.Announced) != 0 || e.Owner != MemberId);
        // A new life keeps only a pending mark (the destroy of the previous life still has to go out).
        var keep = e.Status & (newLife ? ConnectionStatus.Pending : ConnectionStatus.Pending | ConnectionStatus.Sent);
        byte serviceClass = !newLife ? e.ServiceClass
            : unitClass != NotClassified ? unitClass
            : preClass != NotClassified ? preClass
            : _catalog.Classify(change.Key);
        long created = newLife ? (change.Entry.CreatedMs > 0 ? Math.Min(change.Entry.CreatedMs, nowMs) : nowMs) : e.CreatedMs;

        ref readonly var src = ref change.Entry;
        e.Reply = src.Reply;
        e.State = src.State;
        e.TimeoutSeconds = src.TimeoutSeconds;
        e.Status = (src.Status & ConnectionStatus.WireMask) | keep | (announced ? ConnectionStatus.Announced : 0);
        e.CreatedMs = created;
        // Wall clocks step (and differ between members): an update never predates the creation it follows, or the
        // record would be refused by every reader (RecordCodec) and its full syncs would fail for good.
        e.UpdatedMs = Math.Max(nowMs, created);
        e.Version = _clock.Next(nowMs);
        e.Owner = MemberId;
        e.ServiceClass = serviceClass;
        e.Mark = src.Mark;
        _table.SetMaster(change.Key, ref e, src.Master);
        if (change.HasCounters)
        {
            _table.SetCounters(change.Key, change.Counters);
        }

        if (announced)
        {
            return Enqueue(ref e, slot);
        }

        if (!newLife)
        {
            return false; // still waiting for its delay, or never synced
        }

        if (unitClass != NotClassified)
        {
            // Part of a unit: announced with its control connection (now, if the control is out already; else when it is).
            AddRelatedLocked(control, change.Key);
            if (!unitAnnounced)
            {
                return false;
            }

            e.Status |= ConnectionStatus.Announced;
            return Enqueue(ref e, slot);
        }

        var policy = _catalog.PolicyOf(serviceClass);
        ref var tag = ref _table.TagAt(slot);
        tag.Messages = 0;
        bool covered = false;
        bool templateQueued = false;
        if (_templatesMade)
        {
            // Connection templates (SyncEngine.Templates.cs): one flag for members whose classes make none.
            covered = OnNewForTemplatesLocked(change.Key, serviceClass, nowMs);
            templateQueued = _templatesQueued;
        }

        var decider = _decider;
        if (decider is not null)
        {
            var decision = decider.Decide(change.Key, _table.Read(change.Key, e), serviceClass, policy);
            return (covered && decision.Kind == SyncPolicyKind.Delayed
                ? CoverLocked(ref tag, decision)
                : ApplyDecisionLocked(ref e, slot, ref tag, change.Key, decision)) | templateQueued;
        }

        tag.Score = SlotTag.NoScore;
        switch (policy.Kind)
        {
            case SyncPolicyKind.Full:
                tag.DelayCode = DelayGrid.Now;
                e.Status |= ConnectionStatus.Announced;
                if (_units is not null && _units.ContainsKey(change.Key))
                {
                    return AnnounceUnitLocked(ref e, slot, change.Key, nowMs);
                }

                return Enqueue(ref e, slot);
            case SyncPolicyKind.Delayed:
                return ScheduleLocked(ref tag, DelayGrid.Encode((int)policy.Delay.TotalMilliseconds), change.Key, created, created + (long)policy.Delay.TotalMilliseconds) | templateQueued;
            default:
                return NeverSyncLocked(ref tag) | templateQueued;
        }
    }

    /// <summary>Carries out a decider's decision for a new connection (delays rounded to the tag's grid). Under the table lock.</summary>
    private bool ApplyDecisionLocked(ref TableEntry e, int slot, ref SlotTag tag, in ConnectionKey key, SyncDecision decision)
    {
        tag.Score = SlotTag.EncodeScore(decision.Score);
        switch (decision.Kind)
        {
            case SyncPolicyKind.Full:
                tag.DelayCode = DelayGrid.Now;
                e.Status |= ConnectionStatus.Announced;
                return Enqueue(ref e, slot);
            case SyncPolicyKind.Delayed:
                byte delayCode = DelayGrid.Encode(decision.DelayMs);
                return ScheduleLocked(ref tag, delayCode, key, e.CreatedMs, e.CreatedMs + DelayGrid.Decode(delayCode));
            default:
                return NeverSyncLocked(ref tag);
        }
    }

    /// <summary>Holds a new connection back until <paramref name="dueMs"/>, its tag recording <paramref name="delayCode"/>; false (nothing to send now). Under the table lock.</summary>
    private bool ScheduleLocked(ref SlotTag tag, byte delayCode, in ConnectionKey key, long createdMs, long dueMs)
    {
        tag.DelayCode = delayCode;
        _delayed.Enqueue((key, createdMs), dueMs);
        _counters.DelayedScheduled++;
        return false;
    }

    /// <summary>Marks a new connection never to be synced; false (nothing to send). Under the table lock.</summary>
    private bool NeverSyncLocked(ref SlotTag tag)
    {
        tag.DelayCode = DelayGrid.Never;
        _counters.NeverSynced++;
        return false;
    }

    private bool DestroyLocked(ref TableEntry e, bool added, int slot, in ConnectionKey key, long nowMs)
    {
        if (added)
        {
            _table.Remove(key);
            _counters.UnknownDestroys++;
            return false;
        }

        if ((e.Status & ConnectionStatus.Tombstone) != 0)
        {
            return false;
        }

        bool owned = e.Owner == MemberId;
        bool announced = (e.Status & ConnectionStatus.Announced) != 0 || !owned;
        var sink = _outcomes;
        if (!announced)
        {
            // Never announced (delayed and ended early, or a never-sync class): it costs zero messages.
            var tag = _table.TagAt(slot);
            if (tag.DelayCode is not DelayGrid.Now and not DelayGrid.Never)
            {
                _counters.DelayedSuppressed++;
            }

            if (sink is not null)
            {
                ReportEnded(sink, key, e, tag, nowMs, ConnectionEndReason.Destroyed);
            }

            if (_templatesMade && owned)
            {
                OnUnannouncedEndLocked(key, e, tag, nowMs);
            }

            if ((e.Status & ConnectionStatus.Pending) != 0)
            {
                // The destroy of an earlier, announced life of this key is still queued: keep it a tombstone.
                _table.SetMaster(key, ref e, default);
                MakeTombstone(ref e, _clock.Next(nowMs), nowMs);
                return true;
            }

            _table.Remove(key);
            return false;
        }

        if (sink is not null && owned)
        {
            // Counted with the destroy record it is about to cost (unless it coalesces into a queued one).
            var tag = _table.TagAt(slot);
            if ((e.Status & ConnectionStatus.Pending) == 0)
            {
                tag.Messages = (ushort)Math.Min(ushort.MaxValue, tag.Messages + 1);
            }

            ReportEnded(sink, key, e, tag, nowMs, ConnectionEndReason.Destroyed);
        }

        _table.SetMaster(key, ref e, default); // a tombstone needs no master: the side table keeps only live related entries
        MakeTombstone(ref e, _clock.Next(nowMs), nowMs);
        _table.ClearCounters(key);
        return Enqueue(ref e, slot);
    }

    private void ReportEnded(IConnectionOutcomeSink sink, in ConnectionKey key, in TableEntry e, SlotTag tag, long nowMs, ConnectionEndReason reason)
    {
        bool hasCounters = _table.TryGetCounters(key, out var counters);
        var outcome = new ConnectionOutcome(key, e.ServiceClass, e.CreatedMs, nowMs, reason,
            (e.Status & ConnectionStatus.Announced) != 0, DelayGrid.Decode(tag.DelayCode), SlotTag.DecodeScore(tag.Score),
            tag.Messages, e.State, counters, hasCounters);
        sink.OnEnded(outcome);
    }

    /// <summary>The sweep's view of an expiring entry: an owned, live connection ends (timed out).</summary>
    private void OnExpired(in ConnectionKey key, in TableEntry entry, SlotTag tag, long nowMs)
    {
        var sink = _outcomes;
        if (sink is not null && entry.Owner == MemberId && (entry.Status & ConnectionStatus.Tombstone) == 0)
        {
            ReportEnded(sink, key, entry, tag, Math.Min(nowMs, entry.ExpiresAtMs), ConnectionEndReason.Expired);
        }
    }

    private void MakeTombstone(ref TableEntry e, ulong version, long nowMs)
    {
        e.Version = version;
        e.Status = ConnectionStatus.Tombstone | (e.Status & (ConnectionStatus.Pending | ConnectionStatus.Sent));
        e.UpdatedMs = Math.Max(nowMs, e.CreatedMs);
        e.TimeoutSeconds = (uint)Math.Max(1, _options.TombstoneTtl.TotalSeconds);
    }

    /// <summary>
    /// Marks the entry as waiting for the sender. An entry already waiting is not queued again: the sender reads
    /// its latest state when it drains the queue, so changes coalesce per connection. Under the table lock.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Enqueue(ref TableEntry e, int slot)
    {
        _counters.UpdatesQueued++;
        if ((e.Status & ConnectionStatus.Pending) != 0)
        {
            _counters.UpdatesCoalesced++;
            return true;
        }

        ref var tag = ref _table.TagAt(slot);
        if (tag.Messages != ushort.MaxValue)
        {
            tag.Messages++; // one record will go out for this connection
        }

        e.Status |= ConnectionStatus.Pending;
        if (_pendingCount == _pendingSlots.Length)
        {
            Array.Resize(ref _pendingSlots, _pendingSlots.Length * 2);
        }

        _pendingSlots[_pendingCount++] = slot;
        return true;
    }

    /// <summary>Announces delayed connections whose delay has passed and that are still alive. Under the table lock.</summary>
    private bool ReleaseDueLocked(long nowMs)
    {
        bool queued = false;
        while (_delayed.TryPeek(out var item, out long due) && due <= nowMs)
        {
            _delayed.Dequeue();
            ref var e = ref _table.GetOrAdd(item.Key, out bool added, out int slot);
            if (added)
            {
                _table.Remove(item.Key);
                continue;
            }

            if (e.CreatedMs != item.CreatedMs
                || (e.Status & (ConnectionStatus.Tombstone | ConnectionStatus.Announced)) != 0 || e.Owner != MemberId)
            {
                continue; // ended (or replaced) before its delay: nothing is sent
            }

            var decider = _decider;
            if (decider is not null && !ReviseLocked(decider, ref e, slot, item, nowMs))
            {
                continue; // held longer, or never
            }

            e.Status |= ConnectionStatus.Announced;
            e.Version = _clock.Next(nowMs); // announcing is a change: newer than any tombstone of an earlier life
            _counters.DelayedAnnounced++;
            queued |= _units is not null && _units.ContainsKey(item.Key) ? AnnounceUnitLocked(ref e, slot, item.Key, nowMs) : Enqueue(ref e, slot);
        }

        return queued;
    }

    /// <summary>
    /// The delay checkpoint with a decider: true to announce now; otherwise the connection is held again (scheduled
    /// for the new checkpoint) or never announced. Under the table lock.
    /// </summary>
    private bool ReviseLocked(ISyncDecider decider, ref TableEntry e, int slot, (ConnectionKey Key, long CreatedMs) item, long nowMs)
    {
        bool hasCounters = _table.TryGetCounters(item.Key, out var counters);
        long age = Math.Max(0, nowMs - e.CreatedMs);
        var decision = decider.Revise(item.Key, _table.Read(item.Key, e), counters, hasCounters, e.ServiceClass, age);
        ref var tag = ref _table.TagAt(slot);
        switch (decision.Kind)
        {
            case SyncPolicyKind.Full:
                tag.DelayCode = DelayGrid.Encode((int)Math.Min(int.MaxValue, age));
                return true;
            case SyncPolicyKind.Delayed:
                tag.DelayCode = DelayGrid.Encode((int)Math.Min(int.MaxValue, age + decision.DelayMs));
                _delayed.Enqueue(item, e.CreatedMs + Math.Max(age + 1, DelayGrid.Decode(tag.DelayCode)));
                _counters.DelayedRevised++;
                return false;
            default:
                tag.DelayCode = DelayGrid.Never;
                _counters.DelayedRevised++;
                _counters.NeverSynced++;
                return false;
        }
    }

    /// <summary>Applies one record received from a peer: only a newer version wins. Under the table lock.</summary>
    private void ApplyLocked(in ConnectionEvent r, long nowMs)
    {
        if (!ApplyVersionedLocked(r, nowMs))
        {
            _counters.UpdatesStale++;
            return;
        }

        _counters.UpdatesApplied++;
        AppliedObserver?.Invoke(r);
    }

    /// <summary>
    /// The apply rule shared by delta sync and full sync: the record wins only if its version is newer than the
    /// entry's. Returns false (nothing changed) for a stale record. Under the table lock.
    /// </summary>
    private bool ApplyVersionedLocked(in ConnectionEvent r, long nowMs, bool snapshot = false)
    {
        ref var e = ref _table.GetOrAdd(r.Key, out bool added, out int slot);
        if (_replaceMarks is not null && (snapshot || added || e.Version < r.Entry.Version))
        {
            // A full sync that replaces is running: the snapshot names this entry, or a newer change arrived.
            ConfirmForReplaceLocked(slot);
        }

        if (!added && e.Version >= r.Entry.Version)
        {
            return false;
        }

        _clock.Observe(r.Entry.Version);
        var pending = added ? 0 : e.Status & ConnectionStatus.Pending;
        if (r.Kind == ConnectionEventKind.Destroy)
        {
            byte owner = added ? (byte)0 : e.Owner;
            _table.SetMaster(r.Key, ref e, default);
            e = default;
            MakeTombstone(ref e, r.Entry.Version, nowMs);
            e.Status = ConnectionStatus.Tombstone | pending;
            e.Owner = owner;
            _table.ClearCounters(r.Key);
        }
        else
        {
            e.CopyFrom(r.Entry);
            _table.SetMaster(r.Key, ref e, r.Entry.Master);
            e.Status = (e.Status & ConnectionStatus.WireMask) | pending;
            if (e.Owner == MemberId)
            {
                // This member's own connection from an earlier life (or its time as Active), back through a peer: it was
                // on the wire, so it is announced. Left unannounced, an Active would neither count it in anti-entropy
                // nor send its destroy (a Standby lacking it never got it; one holding it kept it as a ghost).
                e.Status |= ConnectionStatus.Announced;
            }
            if (r.HasCounters)
            {
                _table.SetCounters(r.Key, r.Counters);
            }
            else
            {
                _table.ClearCounters(r.Key);
            }
        }

        if (!snapshot && e.Owner != MemberId && (_relaying || StartRelayLocked()))
        {
            Enqueue(ref e, slot); // a Standby between two Actives passes each one's changes on to the other (SyncEngine.Handover.cs)
        }

        return true;
    }
}
