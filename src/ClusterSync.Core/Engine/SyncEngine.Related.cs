using System.Buffers;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Table;

namespace ClusterSync.Engine;

/// <summary>
/// Related connections (a protocol plugin's control connection and its data/media connections) kept as one unit.
/// </summary>
/// <remarks>
/// The owner keeps, per control connection, the list of its related connections (only when a protocol plugin ties
/// some: a node without one pays a null check). A related connection takes its control connection's class; it is
/// announced only once its control connection is (at once if it already is, else together with it when its delay
/// ends); the sender stages a control connection's pending related connections right after it and never splits such
/// a group across datagrams, and a peer applies one datagram under one table lock, so the peer gets the control
/// connection and its related connections together. A control connection's destroy destroys its related connections
/// in the same datagram: they leave the peer together. See docs/plugins.md.
/// </remarks>
public sealed partial class SyncEngine : IConnectionEventSink
{
    private const int MaxRelatedPerUnit = 16;

    // Under _tableLock. Control connection → its related connections; related → its control connection.
    private Dictionary<ConnectionKey, List<ConnectionKey>>? _units;
    private Dictionary<ConnectionKey, ConnectionKey>? _controlOf;

    /// <summary>Related connections currently tied to control connections (for tests and status).</summary>
    public int RelatedConnectionCount
    {
        get
        {
            lock (_tableLock)
            {
                return _controlOf?.Count ?? 0;
            }
        }
    }

    private void SubmitThroughPlugin(ReadOnlySpan<ConnectionEvent> changes, PluginClassifierBinding plugin)
    {
        // Classify the batch's new connections through the plugin outside the table lock (a hung plugin call blocks
        // only this thread), then apply the batch under one lock as usual.
        var classes = ArrayPool<byte>.Shared.Rent(changes.Length);
        ConnectionKey[]? controls = plugin.Resolver is not null ? ArrayPool<ConnectionKey>.Shared.Rent(changes.Length) : null;
        try
        {
            for (int i = 0; i < changes.Length; i++)
            {
                ref readonly var c = ref changes[i];
                if (c.Kind != ConnectionEventKind.New || plugin.Disabled)
                {
                    // Not classified here: an update, or the plugin was disabled within this batch (built-in rules).
                    classes[i] = NotClassified;
                    if (controls is not null)
                    {
                        controls[i] = default;
                    }

                    continue;
                }

                classes[i] = _catalog.ClassifyPlugin(plugin, c.Key, out bool related, out var control);
                if (controls is not null)
                {
                    controls[i] = related ? control : default;
                }
            }

            long nowMs = NowMs();
            bool queued = false;
            lock (_tableLock)
            {
                _counters.EventsSubmitted += changes.Length;
                for (int i = 0; i < changes.Length; i++)
                {
                    queued |= SubmitLocked(changes[i], nowMs, classes[i], controls is null ? default : controls[i]);
                }
            }

            if (queued)
            {
                SignalSender();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(classes);
            if (controls is not null)
            {
                ArrayPool<ConnectionKey>.Shared.Return(controls);
            }
        }
    }

    private void AddRelatedLocked(in ConnectionKey control, in ConnectionKey related)
    {
        _units ??= [];
        _controlOf ??= [];
        if (!_units.TryGetValue(control, out var list))
        {
            _units[control] = list = new List<ConnectionKey>(4);
        }

        if (list.Count >= MaxRelatedPerUnit)
        {
            _counters.RelatedOverflow++;
            return; // kept as an ordinary connection of the control's class
        }

        if (_controlOf.TryAdd(related, control))
        {
            list.Add(related);
            _counters.RelatedTied++;
        }
    }

    private void ForgetRelatedLocked(in ConnectionKey related)
    {
        if (_controlOf is null || !_controlOf.Remove(related, out var control))
        {
            return;
        }

        if (_units!.TryGetValue(control, out var list))
        {
            list.Remove(related);
        }
    }

    /// <summary>Announces a control connection and every related connection not yet announced, queued back to back.</summary>
    private bool AnnounceUnitLocked(ref TableEntry control, int controlSlot, in ConnectionKey controlKey, long nowMs)
    {
        bool queued = Enqueue(ref control, controlSlot);
        foreach (var key in _units![controlKey])
        {
            ref var e = ref _table.GetOrAdd(key, out bool added, out int slot);
            if (added)
            {
                _table.Remove(key);
                continue;
            }

            if ((e.Status & (ConnectionStatus.Tombstone | ConnectionStatus.Announced)) != 0 || e.Owner != MemberId)
            {
                continue;
            }

            e.Status |= ConnectionStatus.Announced;
            e.Version = _clock.Next(nowMs);
            queued |= Enqueue(ref e, slot);
        }

        return queued;
    }

    /// <summary>The control connection ended: its related connections end with it (their destroys travel with its own).</summary>
    private bool DestroyUnitLocked(in ConnectionKey controlKey, long nowMs)
    {
        ref var c = ref _table.GetOrAdd(controlKey, out bool added, out int controlSlot);
        bool queued = DestroyLocked(ref c, added, controlSlot, controlKey, nowMs);
        var list = _units![controlKey];
        foreach (var key in list)
        {
            ref var e = ref _table.GetOrAdd(key, out bool childAdded, out int slot);
            if (childAdded)
            {
                _table.Remove(key);
                continue;
            }

            queued |= DestroyLocked(ref e, false, slot, key, nowMs);
            _counters.RelatedDestroyedWithControl++;
        }

        if (!queued)
        {
            Forget(controlKey, list);
        }

        // Else the sender forgets the unit once it has staged the control connection's destroy with its related ones.
        return queued;
    }

    private void Forget(in ConnectionKey controlKey, List<ConnectionKey> list)
    {
        foreach (var key in list)
        {
            _controlOf!.Remove(key);
        }

        _units!.Remove(controlKey);
    }

    /// <summary>
    /// Sender, under the table lock: whether a drained entry waits for its control connection (still pending), so that
    /// it is staged with it; and after a control connection is staged, stages its pending related connections.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool WaitsForControlLocked(in ConnectionKey key)
    {
        if (_controlOf is null || _controlOf.Count == 0 || !_controlOf.TryGetValue(key, out var control))
        {
            return false;
        }

        ref var c = ref _table.Find(control);
        return !Unsafe.IsNullRef(ref c) && (c.Status & ConnectionStatus.Pending) != 0;
    }

    /// <summary>Stages the pending related connections of a just-staged control connection; returns the new staged count.</summary>
    private int StageRelatedLocked(in ConnectionKey controlKey, bool controlEnded, ConnectionEvent[] staging, int n)
    {
        if (_units is null || _units.Count == 0 || !_units.TryGetValue(controlKey, out var list))
        {
            return n;
        }

        int first = n;
        foreach (var key in list)
        {
            if (n == staging.Length)
            {
                _counters.RelatedSplit++;
                break; // the rest goes in the next chunk
            }

            ref var e = ref _table.Find(key);
            if (Unsafe.IsNullRef(ref e) || (e.Status & ConnectionStatus.Pending) == 0)
            {
                continue;
            }

            e.Status &= ~ConnectionStatus.Pending;
            if (StageEntry(ref e, key, ref staging[n]))
            {
                n++;
            }
        }

        _stagedUnit[first - 1] = n - first + 1;
        if (controlEnded)
        {
            Forget(controlKey, list);
        }

        return n;
    }
}
