using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Policy;

namespace ClusterSync.Engine;

internal sealed partial class SyncEngine
{
    /// <summary>Applies one data-plane event to the local table and passes it through the policy gate.</summary>
    public void Submit(in ConnectionEvent change) => Submit(new ReadOnlySpan<ConnectionEvent>(in change));

    /// <summary>Applies a batch of data-plane events (one lock, one wake-up of the sender).</summary>
    public void Submit(ReadOnlySpan<ConnectionEvent> changes)
    {
        long nowMs = NowMs();
        bool queued = false;
        lock (_tableLock)
        {
            foreach (ref readonly var change in changes)
            {
                queued |= SubmitLocked(change, nowMs);
            }
        }

        _counters.EventsSubmitted += changes.Length;
        if (queued)
        {
            SignalSender();
        }
    }

    private bool SubmitLocked(in ConnectionEvent change, long nowMs)
    {
        ref var e = ref _table.GetOrAdd(change.Key, out bool added);
        if (change.Kind == ConnectionEventKind.Destroy)
        {
            return DestroyLocked(ref e, added, change.Key, nowMs);
        }

        bool newLife = added || (e.Status & ConnectionStatus.Tombstone) != 0;
        bool announced = !newLife && ((e.Status & ConnectionStatus.Announced) != 0 || e.Owner != MemberId);
        byte serviceClass = newLife ? _catalog.Classify(change.Key) : e.ServiceClass;
        long created = newLife ? (change.Entry.CreatedMs > 0 ? Math.Min(change.Entry.CreatedMs, nowMs) : nowMs) : e.CreatedMs;

        ref readonly var src = ref change.Entry;
        e.Reply = src.Reply;
        e.State = src.State;
        e.TimeoutSeconds = src.TimeoutSeconds;
        e.Status = (src.Status & ConnectionStatus.WireMask) | (announced ? ConnectionStatus.Announced : 0);
        e.CreatedMs = created;
        e.UpdatedMs = nowMs;
        e.Version = _clock.Next(nowMs);
        e.Owner = MemberId;
        e.ServiceClass = serviceClass;
        if (change.HasCounters)
        {
            _table.SetCounters(change.Key, change.Counters);
        }

        if (announced)
        {
            return Enqueue(change.Key, ConnectionEventKind.Update, e);
        }

        if (!newLife)
        {
            return false; // still waiting for its delay, or never synced
        }

        var policy = _catalog.PolicyOf(serviceClass);
        switch (policy.Kind)
        {
            case SyncPolicyKind.Full:
                e.Status |= ConnectionStatus.Announced;
                return Enqueue(change.Key, ConnectionEventKind.New, e);
            case SyncPolicyKind.Delayed:
                _delayed.Enqueue((change.Key, created), created + (long)policy.Delay.TotalMilliseconds);
                _counters.DelayedScheduled++;
                return false;
            default:
                _counters.NeverSynced++;
                return false;
        }
    }

    private bool DestroyLocked(ref ConnectionEntry e, bool added, in ConnectionKey key, long nowMs)
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

        bool announced = (e.Status & ConnectionStatus.Announced) != 0 || e.Owner != MemberId;
        if (!announced)
        {
            // Never announced (delayed and ended early, or a never-sync class): it costs zero messages.
            if (_catalog.PolicyOf(e.ServiceClass).Kind == SyncPolicyKind.Delayed)
            {
                _counters.DelayedSuppressed++;
            }

            _table.Remove(key);
            return false;
        }

        MakeTombstone(ref e, _clock.Next(nowMs), nowMs);
        _table.ClearCounters(key);
        return Enqueue(key, ConnectionEventKind.Destroy, e);
    }

    private void MakeTombstone(ref ConnectionEntry e, ulong version, long nowMs)
    {
        e.Version = version;
        e.Status = ConnectionStatus.Tombstone;
        e.UpdatedMs = nowMs;
        e.TimeoutSeconds = (uint)Math.Max(1, _options.TombstoneTtl.TotalSeconds);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Enqueue(in ConnectionKey key, ConnectionEventKind kind, in ConnectionEntry entry)
    {
        var change = new ConnectionEvent { Kind = kind, Key = key, Entry = entry };
        if (kind != ConnectionEventKind.Destroy && _table.TryGetCounters(key, out var c))
        {
            change.Counters = c;
            change.HasCounters = true;
        }

        if (_active.Upsert(change))
        {
            _counters.UpdatesCoalesced++;
        }

        _counters.UpdatesQueued++;
        return true;
    }

    /// <summary>Announces delayed connections whose delay has passed and that are still alive. Under the table lock.</summary>
    private bool ReleaseDueLocked(long nowMs)
    {
        bool queued = false;
        while (_delayed.TryPeek(out var item, out long due) && due <= nowMs)
        {
            _delayed.Dequeue();
            ref var e = ref _table.Find(item.Key);
            if (Unsafe.IsNullRef(ref e) || e.CreatedMs != item.CreatedMs
                || (e.Status & (ConnectionStatus.Tombstone | ConnectionStatus.Announced)) != 0 || e.Owner != MemberId)
            {
                continue; // ended (or replaced) before its delay: nothing is sent
            }

            e.Status |= ConnectionStatus.Announced;
            _counters.DelayedAnnounced++;
            queued |= Enqueue(item.Key, ConnectionEventKind.New, e);
        }

        return queued;
    }

    /// <summary>Applies one record received from a peer: only a newer version wins. Under the table lock.</summary>
    private void ApplyLocked(in ConnectionEvent r, long nowMs)
    {
        ref var e = ref _table.GetOrAdd(r.Key, out bool added);
        if (!added && e.Version >= r.Entry.Version)
        {
            _counters.UpdatesStale++;
            return;
        }

        _clock.Observe(r.Entry.Version);
        if (r.Kind == ConnectionEventKind.Destroy)
        {
            byte owner = added ? (byte)0 : e.Owner;
            e = default;
            MakeTombstone(ref e, r.Entry.Version, nowMs);
            e.Owner = owner;
            _table.ClearCounters(r.Key);
        }
        else
        {
            e = r.Entry;
            e.Status &= ConnectionStatus.WireMask;
            if (r.HasCounters)
            {
                _table.SetCounters(r.Key, r.Counters);
            }
            else
            {
                _table.ClearCounters(r.Key);
            }
        }

        _counters.UpdatesApplied++;
        AppliedObserver?.Invoke(r);
    }
}
