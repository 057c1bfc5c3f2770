using System.Runtime.InteropServices;
using ClusterSync.Connections;
using ClusterSync.Policy;
using ClusterSync.Templates;

namespace ClusterSync.Engine;

/// <summary>
/// The engine's connection templates (docs/templates.md): the live templates, the shapes being counted toward one, and
/// the templates waiting for the sender. Not thread-safe: the engine uses it under its table lock. It allocates only
/// when a template is created or a shape is first seen (a dictionary entry), never per connection of a known shape.
/// </summary>
internal sealed class TemplateTracker
{
    /// <summary>Live templates held at most (a forged or runaway flood of shapes cannot grow the member's memory).</summary>
    public const int MaxTemplates = 65_536;

    /// <summary>Shapes counted toward a template at most; beyond, new shapes are not counted until old windows pass.</summary>
    public const int MaxShapes = 65_536;

    private readonly Settings?[] _byClass = new Settings?[256];
    private readonly Dictionary<ConnectionKey, Template> _live = [];
    private readonly Dictionary<ConnectionKey, Shape> _shapes = [];
    private readonly List<ConnectionKey> _pending = [];
    private readonly long _maxWindowMs;
    private long _nextShapePurgeMs;

    public TemplateTracker(PolicyOptions policy, ServiceClassCatalog catalog)
    {
        foreach (var c in policy.Classes)
        {
            if (c.Templates is { Enabled: true } t && catalog.TryGetId(c.Name, out byte id))
            {
                _byClass[id] = new Settings(t.Threshold, (long)(t.WindowSeconds * 1000), (uint)Math.Round(t.LifetimeSeconds));
                AnyClass = true;
                _maxWindowMs = Math.Max(_maxWindowMs, (long)(t.WindowSeconds * 1000));
            }
        }
    }

    /// <summary>True when some class makes templates (else the tracker only holds what peers send).</summary>
    public bool AnyClass { get; }

    public int LiveCount => _live.Count;

    public int PendingCount => _pending.Count;

    public int ShapeCount => _shapes.Count;

    /// <summary>True when <paramref name="serviceClass"/> makes templates.</summary>
    public bool Makes(byte serviceClass) => _byClass[serviceClass] is not null;

    /// <summary>
    /// A new connection of <paramref name="serviceClass"/> (a class that makes templates): counts its shape, creates the
    /// template when the threshold is reached, keeps a live one alive. Returns true when a live template already covered
    /// it. <paramref name="created"/> tells a template was created by this connection.
    /// </summary>
    public bool OnNew(in ConnectionKey key, byte serviceClass, long nowMs, byte me, VersionClock clock, SyncCounters counters, out bool created)
    {
        created = false;
        var s = _byClass[serviceClass];
        if (s is null || !TemplateKeys.Covers(key.Protocol))
        {
            return false;
        }

        var shape = TemplateKeys.ShapeOf(key);
        if (_live.TryGetValue(shape, out var t))
        {
            if (nowMs < t.ExpiresAtMs)
            {
                Touch(shape, t, s, nowMs, me, clock);
                counters.TemplateCovered++;
                return true;
            }

            _live.Remove(shape);
            counters.TemplatesExpired++;
        }

        ref var sh = ref CollectionsMarshal.GetValueRefOrAddDefault(_shapes, shape, out bool exists);
        if (!exists || nowMs - sh.WindowStartMs > s.WindowMs)
        {
            sh.WindowStartMs = nowMs;
            sh.Count = 0;
        }

        sh.Count++;
        if (sh.Count < s.Threshold)
        {
            if (!exists && _shapes.Count > MaxShapes)
            {
                _shapes.Remove(shape); // full: this shape is not counted (its window would start with the next purge)
                counters.TemplateShapesRefused++;
            }

            return false;
        }

        int count = sh.Count;
        _shapes.Remove(shape);
        if (_live.Count >= MaxTemplates)
        {
            counters.TemplatesRefused++;
            return false;
        }

        var template = new Template
        {
            Owner = me,
            ServiceClass = serviceClass,
            Count = (uint)count,
            LifetimeSeconds = s.LifetimeSeconds,
            CreatedMs = nowMs,
            UpdatedMs = nowMs,
            Version = clock.Next(nowMs),
        };
        _live.Add(shape, template);
        Queue(shape, template, nowMs);
        counters.TemplatesCreated++;
        created = true;
        return false;
    }

    /// <summary>
    /// A connection of a live template's shape: counted, and the template kept alive — re-sent (a new version) once half
    /// its lifetime has passed since it was last sent. A peer's template is taken over the same way, only once its owner
    /// has not re-sent it for half a lifetime (the owner died, or no longer sees the shape): members that share the
    /// traffic of one shape (load sharing) do not take it from each other on every connection.
    /// </summary>
    private void Touch(in ConnectionKey shape, Template t, Settings s, long nowMs, byte me, VersionClock clock)
    {
        if (t.Count != uint.MaxValue)
        {
            t.Count++;
        }

        t.UpdatedMs = Math.Max(t.UpdatedMs, nowMs);
        if (t.Pending || nowMs - t.SentUpdatedMs < t.LifetimeSeconds * 500L)
        {
            return;
        }

        if (t.Owner != me)
        {
            t.Owner = me;
            t.LifetimeSeconds = s.LifetimeSeconds;
        }

        t.Version = clock.Next(nowMs);
        Queue(shape, t, nowMs);
    }

    private void Queue(in ConnectionKey shape, Template t, long nowMs)
    {
        t.SentUpdatedMs = nowMs;
        if (!t.Pending)
        {
            t.Pending = true;
            _pending.Add(shape);
        }
    }

    /// <summary>A template received from a peer: applied when its version is newer and it has not expired. Returns true when applied.</summary>
    public bool Apply(in ConnectionTemplate r, long nowMs, VersionClock clock)
    {
        clock.Observe(r.Version);
        if (_live.TryGetValue(r.Key, out var t))
        {
            if (t.Version >= r.Version)
            {
                return false;
            }
        }
        else
        {
            if (r.ExpiresAtMs <= nowMs || _live.Count >= MaxTemplates)
            {
                return false;
            }

            t = new Template();
            _live.Add(r.Key, t);
        }

        t.Owner = r.Owner;
        t.ServiceClass = r.ServiceClass;
        t.Count = r.Count;
        t.LifetimeSeconds = r.LifetimeSeconds;
        t.CreatedMs = r.CreatedMs;
        t.UpdatedMs = r.UpdatedMs;
        t.SentUpdatedMs = r.UpdatedMs;
        t.Version = r.Version;
        return true;
    }

    /// <summary>Queues every live template for the sender (a full sync's cut: the joiner gets them on the delta stream). Returns how many.</summary>
    public int QueueAll()
    {
        foreach (var (shape, t) in _live)
        {
            if (!t.Pending)
            {
                t.Pending = true;
                _pending.Add(shape);
            }
        }

        return _pending.Count;
    }

    /// <summary>Moves up to <paramref name="destination"/>.Length pending templates into it; returns how many.</summary>
    public int TakePending(Span<ConnectionTemplate> destination)
    {
        int n = 0;
        int taken = 0;
        for (; taken < _pending.Count && n < destination.Length; taken++)
        {
            var shape = _pending[taken];
            if (_live.TryGetValue(shape, out var t) && t.Pending)
            {
                t.Pending = false;
                destination[n++] = ToRecord(shape, t);
            }
        }

        _pending.RemoveRange(0, taken);
        return n;
    }

    /// <summary>Removes the templates expired at <paramref name="nowMs"/> and, about once a second, the shape counts whose window has passed. Returns templates removed.</summary>
    public int Sweep(long nowMs)
    {
        int removed = 0;
        foreach (var (shape, t) in _live)
        {
            if (nowMs >= t.ExpiresAtMs)
            {
                _live.Remove(shape);
                removed++;
            }
        }

        if (nowMs >= _nextShapePurgeMs && _shapes.Count > 0)
        {
            _nextShapePurgeMs = nowMs + 1000;
            foreach (var (shape, sh) in _shapes)
            {
                if (nowMs - sh.WindowStartMs > _maxWindowMs)
                {
                    _shapes.Remove(shape); // its window passed in every class: it would start afresh anyway
                }
            }
        }

        return removed;
    }

    /// <summary>
    /// The anti-entropy digest of the templates: the count and XOR of <c>EntryHash(shape, version)</c> over the live ones
    /// versioned at or below <paramref name="cutoff"/> whose last record sent keeps a replica's copy alive past
    /// <paramref name="untilMs"/> (every member computes that expiry alike: the owner from what it sent, a replica from
    /// what it received).
    /// </summary>
    public Protocol.RangeDigest Digest(ulong cutoff, long untilMs)
    {
        uint count = 0;
        ulong xor = 0;
        foreach (var (shape, t) in _live)
        {
            if (t.Version <= cutoff && t.SentUpdatedMs + (t.LifetimeSeconds * 1000L) > untilMs)
            {
                count++;
                xor ^= Membership.TableDigestAccumulator.EntryHash(shape, t.Version);
            }
        }

        return new Protocol.RangeDigest(count, xor);
    }

    /// <summary>The live template <paramref name="connection"/> matches at <paramref name="nowMs"/>, if any.</summary>
    public bool TryMatch(in ConnectionKey connection, long nowMs, out ConnectionTemplate template)
    {
        var shape = TemplateKeys.ShapeOf(connection);
        if (_live.TryGetValue(shape, out var t) && nowMs < t.ExpiresAtMs)
        {
            template = ToRecord(shape, t);
            return true;
        }

        template = default;
        return false;
    }

    /// <summary>True when a live template of <paramref name="connection"/>'s shape was created at or before <paramref name="sinceMs"/> (it covered the connection since then).</summary>
    public bool CoveredSince(in ConnectionKey connection, long sinceMs, long nowMs)
        => _live.TryGetValue(TemplateKeys.ShapeOf(connection), out var t) && t.CreatedMs <= sinceMs && nowMs < t.ExpiresAtMs;

    /// <summary>Copies of the templates live at <paramref name="nowMs"/> (allocates: status, commits, tests).</summary>
    public List<ConnectionTemplate> Snapshot(long nowMs)
    {
        var list = new List<ConnectionTemplate>(_live.Count);
        foreach (var (shape, t) in _live)
        {
            if (nowMs < t.ExpiresAtMs)
            {
                list.Add(ToRecord(shape, t));
            }
        }

        return list;
    }

    private static ConnectionTemplate ToRecord(in ConnectionKey shape, Template t)
        => new(shape, t.Owner, t.ServiceClass, t.Count, t.LifetimeSeconds, t.CreatedMs, t.UpdatedMs, t.Version);

    private sealed record Settings(int Threshold, long WindowMs, uint LifetimeSeconds);

    private struct Shape
    {
        public int Count;
        public long WindowStartMs;
    }

    private sealed class Template
    {
        public byte Owner;
        public byte ServiceClass;
        public uint Count;
        public uint LifetimeSeconds;
        public long CreatedMs;
        public long UpdatedMs;
        public long SentUpdatedMs;
        public ulong Version;
        public bool Pending;

        public long ExpiresAtMs => UpdatedMs + (LifetimeSeconds * 1000L);
    }
}
