using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Protocol;
using ClusterSync.Security;
using ClusterSync.Table;
using ClusterSync.Templates;

namespace ClusterSync.Engine;

/// <summary>
/// Connection templates (docs/templates.md): made on the submit path for classes that have them on, sent by the sender
/// thread in datagrams of their own, applied by the receiver, expired on the control tick on every member, re-announced
/// at a full sync's cut, committed with the replica on failover.
/// </summary>
public sealed partial class SyncEngine
{
    private TemplateTracker? _templateTracker;
    private bool _templatesMade;
    private readonly ConnectionTemplate[] _templateStaging = new ConnectionTemplate[64];
    private long _nextTemplateSweepMs;

    // Created on first use: the policy's classes, or the first template a peer sends.
    private TemplateTracker Templates => _templateTracker ??= new TemplateTracker(_options.Policy, _catalog);

    /// <summary>Called from the constructor: builds the tracker when a class makes templates (the submit path checks one flag).</summary>
    private void InitTemplates()
    {
        foreach (var c in _options.Policy.Classes)
        {
            if (c.Templates is { Enabled: true })
            {
                _templatesMade = Templates.AnyClass;
                return;
            }
        }
    }

    /// <summary>Live templates held (a gauge for status).</summary>
    public int LiveTemplateCount
    {
        get
        {
            lock (_tableLock)
            {
                return _templateTracker?.LiveCount ?? 0;
            }
        }
    }

    /// <summary>Copies of the templates live now (allocates: status, the failover commit, tests).</summary>
    public List<ConnectionTemplate> SnapshotTemplates()
    {
        long nowMs = NowMs();
        lock (_tableLock)
        {
            return _templateTracker?.Snapshot(nowMs) ?? [];
        }
    }

    /// <summary>The live template <paramref name="connection"/> matches, if any.</summary>
    public bool TryMatchTemplate(in ConnectionKey connection, out ConnectionTemplate template)
    {
        long nowMs = NowMs();
        lock (_tableLock)
        {
            if (_templateTracker is { } t)
            {
                return t.TryMatch(connection, nowMs, out template);
            }
        }

        template = default;
        return false;
    }

    /// <summary>A new connection of a member that makes templates: counts its shape. True when a live template covers it. Under the table lock.</summary>
    private bool OnNewForTemplatesLocked(in ConnectionKey key, byte serviceClass, long nowMs)
    {
        bool covered = Templates.OnNew(key, serviceClass, nowMs, MemberId, _clock, _counters, out bool created);
        if (created || Templates.PendingCount > 0)
        {
            _templatesQueued = true;
        }

        return covered;
    }

    private volatile bool _templatesQueued;

    /// <summary>
    /// A covered connection whose decider said "announce after a delay": it stays unsynchronized (the template stands
    /// for it), nothing is scheduled, and its tag keeps the decided delay, so that its outcome reports the decision
    /// (<see cref="ConnectionOutcome.SyncDelayMs"/>, not synced): the adaptive controller counts it as exposed for that
    /// delay, as it registered it, and no longer — the template protects it after. Now and never stand (not called).
    /// Under the table lock; false (nothing to send).
    /// </summary>
    private bool CoverLocked(ref SlotTag tag, SyncDecision decision)
    {
        tag.Score = SlotTag.EncodeScore(decision.Score);
        tag.DelayCode = DelayGrid.Encode(decision.DelayMs);
        _counters.TemplateUnsynced++;
        return false;
    }

    /// <summary>A connection that ends unannounced: counted when a template covered it all its life. Under the table lock.</summary>
    private void OnUnannouncedEndLocked(in ConnectionKey key, in TableEntry e, SlotTag tag, long nowMs)
    {
        if (tag.DelayCode == DelayGrid.Now || !Templates.CoveredSince(key, e.CreatedMs, nowMs))
        {
            return;
        }

        long life = Math.Max(0, nowMs - e.CreatedMs);
        int delay = DelayGrid.Decode(tag.DelayCode);
        _counters.TemplateCoveredEnded++;
        _counters.TemplateExposureRemovedMs += delay < 0 ? life : Math.Min(life, delay);
    }

    /// <summary>Applies a template record from a peer. Under the table lock.</summary>
    private void ApplyTemplateLocked(in ConnectionTemplate t, long nowMs)
    {
        if (Templates.Apply(t, nowMs, _clock))
        {
            _counters.TemplateRecordsApplied++;
        }
        else
        {
            _counters.TemplateRecordsStale++;
        }
    }

    /// <summary>Expires templates, on the control tick, about every 100 ms. Under the table lock.</summary>
    private void SweepTemplatesLocked(long nowMs)
    {
        if (_templateTracker is null || nowMs < _nextTemplateSweepMs)
        {
            return;
        }

        _nextTemplateSweepMs = nowMs + 100;
        _counters.TemplatesExpired += _templateTracker.Sweep(nowMs);
    }

    /// <summary>A full sync's cut: every live template goes out again on the delta stream, after the cut, so the joiner receives it. Under the table lock.</summary>
    private void QueueTemplatesAtCutLocked()
    {
        if (_templateTracker is { LiveCount: > 0 } t && t.QueueAll() > 0)
        {
            _templatesQueued = true;
        }
    }

    /// <summary>
    /// The sender's part: pending templates go out in Data datagrams of their own (so a member that predates templates
    /// refuses only those). Sender thread (or a stepped engine's step).
    /// </summary>
    private void DrainTemplates()
    {
        while (true)
        {
            int n;
            lock (_tableLock)
            {
                if (!_templatesQueued)
                {
                    return;
                }

                n = _templateTracker?.TakePending(_templateStaging) ?? 0;
                if (n < _templateStaging.Length)
                {
                    _templatesQueued = false;
                }
            }

            if (n == 0)
            {
                return;
            }

            EncodeTemplates(_templateStaging.AsSpan(0, n));
        }
    }

    private void EncodeTemplates(ReadOnlySpan<ConnectionTemplate> templates)
    {
        int capacity = _options.Mtu - PacketHeader.Size - (_dataSealer.Sealed ? PacketProtection.TagSize : 0);
        foreach (ref readonly var t in templates)
        {
            if (_openCount == 0)
            {
                OpenDatagram();
            }

            var body = _openSlot.Span.Slice(PacketHeader.Size, capacity);
            int n = TemplateCodec.Write(body[_openLength..], t);
            if (n == 0)
            {
                CloseDatagram();
                OpenDatagram();
                body = _openSlot.Span.Slice(PacketHeader.Size, capacity);
                n = TemplateCodec.Write(body[_openLength..], t);
            }

            _openLength += n;
            _openCount++;
            _counters.TemplateRecordsSent++;
        }

        if (_openCount > 0)
        {
            CloseDatagram();
        }

        FlushOutgoing(); // with a batching channel, a pass with templates and no connection records must still send them
    }

    /// <summary>
    /// The receiver's part: a template record where a connection record was expected. Returns the bytes it took, or 0
    /// (malformed). Receiver thread.
    /// </summary>
    private int HandleTemplateRecord(ReadOnlySpan<byte> records, long nowMs)
    {
        int used = TemplateCodec.TryRead(records, out var t);
        if (used == 0)
        {
            return 0;
        }

        lock (_tableLock)
        {
            ApplyTemplateLocked(t, nowMs);
        }

        return used;
    }

    /// <summary>True when <paramref name="records"/> starts with a template record's op (a receiver's cheap test before it counts a record malformed).</summary>
    private static bool StartsWithTemplate(ReadOnlySpan<byte> records) => records.Length > 0 && records[0] == TemplateCodec.Op;
}
