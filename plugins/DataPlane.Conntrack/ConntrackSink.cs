using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using ClusterSync.Connections;
using ClusterSync.DataPlane;
using ClusterSync.Plugins.Conntrack.Netlink;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// Commits a replica into the kernel's conntrack table of the namespace the sink was created in. CT_NEW with
/// NLM_F_CREATE|NLM_F_EXCL, packed <c>batchBytes</c> per send; without <c>ack</c> the kernel answers only failures
/// (an NLMSG_ERROR carrying the request's sequence number, queued before the send returns), so a batch costs one
/// system call plus a non-blocking drain. EEXIST is answered by an update (CT_NEW without CREATE/EXCL), or for a NAT'd
/// entry (NAT can only be set on create) and when the update is refused (EBUSY) by delete + create. Every other
/// refusal is counted with its errno. The events our commit causes carry this socket's port id: the factory's source
/// does not re-announce them.
/// Related connections (<see cref="ConnectionEntry.Master"/> set) are created with CTA_TUPLE_MASTER, after every batch
/// of the entries without a master has been sent and drained (the kernel looks the master up when it creates the
/// related entry, and refuses it with ENOENT if the master is not there); chains of masters go in waves the same way.
/// A related entry refused with ENOENT is counted (<c>related_master_missing</c>) and created again without its master,
/// so it still flows. The mark (CTA_MARK) is written on create and on update; the master only on create (ctnetlink
/// answers a master on an existing entry with EOPNOTSUPP).
/// With <c>templates</c> set, the live connection templates of a takeover open a pickup window in the kernel
/// (<see cref="TemplatePickup"/>); without it they are counted (<c>templates_not_installed</c>) and left out.
/// </summary>
internal sealed class ConntrackSink : IReplicaSink, IReplicaTemplateSink, IDataPlaneStatus, IDisposable
{
    private const int ReceiveBufferBytes = 64 << 20;
    private readonly NetlinkSocket _socket;
    private readonly ConntrackSettings _settings;
    private readonly CommitRegistry _registry;
    private readonly TimeProvider _time;
    private readonly object _commitLock = new();
    private readonly byte[] _batch;
    private readonly byte[] _receive = new byte[128 << 10];
    private readonly ConcurrentDictionary<string, long> _refusedByErrno = new(StringComparer.Ordinal);
    private uint _sequence;
    private long _commits;
    private long _committed;
    private long _refused;
    private long _updated;
    private long _replaced;
    private long _unmappable;
    private long _batches;
    private long _messages;
    private long _acks;
    private long _errorsLost;
    private long _related;
    private long _relatedWaves;
    private long _relatedMasterMissing;
    private long _lastEntries;
    private long _lastMicroseconds;
    private long _lastSendMicroseconds;
    private long _lastDrainMicroseconds;
    private long _sendTicks;
    private long _drainTicks;
    private long _templatesNotInstalled;
    private long _lastStartedUnixUs;
    private long _lastFirstBatchUnixUs;
    private long _lastEndedUnixUs;
    private bool _firstBatchPending;
    private long _lastCommitted;
    private long _lastRefused;
    private readonly TemplatePickup? _pickup;

    // Reused by every commit (under _commitLock): a commit of 1,000,000 entries allocates nothing in proportion to it
    // (issue 13: the new Active's allocations during its kernel commit). The retry lists hold one chunk's answers at most.
    private readonly int[] _chunk = new int[ChunkEntries];
    private readonly List<int> _existing = new(ChunkEntries);
    private readonly List<int> _orphans = [];
    private readonly List<int> _replace = [];
    private readonly List<int> _update = [];
    private readonly List<int> _busy = [];
    private readonly int[] _slots;          // message slot → replica index (a replace is two messages: delete, create)
    private readonly ConnectionKey[] _keys;
    private readonly bool[] _failed;
    private readonly bool[] _withMaster;

    /// <summary>Entries of a wave created, drained and settled (EEXIST, ENOENT) at a time.</summary>
    internal const int ChunkEntries = 16_384;

    public ConntrackSink(ConntrackSettings settings, CommitRegistry registry, TimeProvider? time = null)
    {
        _settings = settings;
        _registry = registry;
        _time = time ?? TimeProvider.System;
        _socket = NetlinkSocket.Open("commit socket");
        try
        {
            _socket.ForceReceiveBuffer(ReceiveBufferBytes, "commit socket");
            _socket.ForceSendBuffer((settings.BatchBytes * 2) + (1 << 16), "commit socket");
            _socket.CapAcks("commit socket");
            _socket.SetReceiveTimeout(TimeSpan.FromSeconds(1), "commit socket");
        }
        catch
        {
            _socket.Dispose();
            throw;
        }

        _batch = new byte[settings.BatchBytes];
        int maxMessages = (_batch.Length / 64) + 1;
        _slots = new int[maxMessages];
        _keys = new ConnectionKey[maxMessages];
        _failed = new bool[maxMessages];
        _withMaster = new bool[maxMessages];
        _sequence = (uint)Environment.TickCount;
        _registry.AddPort(_socket.PortId);
        if (settings.Templates is { } pickup)
        {
            try
            {
                _pickup = TemplatePickup.Create(pickup, _time);
            }
            catch
            {
                _socket.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// Opens the kernel's pickup window for <paramref name="templates"/> (docs/conntrack.md, "Connection templates");
    /// without the <c>templates</c> setting they are only counted. Throws <see cref="InvalidOperationException"/>
    /// with nft's answer when the kernel refuses the rules.
    /// </summary>
    public void CommitTemplates(IReadOnlyList<ReplicaTemplate> templates)
    {
        ArgumentNullException.ThrowIfNull(templates);
        if (_pickup is null)
        {
            Interlocked.Add(ref _templatesNotInstalled, templates.Count);
            return;
        }

        _pickup.Install(templates);
    }

    public string Name => "conntrack";

    /// <summary>The commit socket's netlink port id (events it causes carry it).</summary>
    public uint PortId => _socket.PortId;

    public void Commit(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        lock (_commitLock)
        {
            _registry.CommitStarted();
            try
            {
                CommitLocked(replica);
            }
            finally
            {
                _registry.CommitEnded();
            }
        }
    }

    private void CommitLocked(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        var clock = Stopwatch.StartNew();
        _sendTicks = 0;
        _drainTicks = 0;
        Interlocked.Exchange(ref _lastStartedUnixUs, UnixMicroseconds());
        Interlocked.Exchange(ref _lastFirstBatchUnixUs, 0);
        Interlocked.Exchange(ref _lastEndedUnixUs, 0);
        _firstBatchPending = true;
        long refusedBefore = Interlocked.Read(ref _refused);
        long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        int ok = 0;
        foreach (var wave in Waves(replica))
        {
            ok += CommitWave(replica, wave, nowMs);
        }

        Interlocked.Add(ref _committed, ok);
        Interlocked.Exchange(ref _lastCommitted, ok);
        Interlocked.Exchange(ref _lastRefused, Interlocked.Read(ref _refused) - refusedBefore);
        Interlocked.Increment(ref _commits);
        Interlocked.Exchange(ref _lastEntries, replica.Count);
        Interlocked.Exchange(ref _lastMicroseconds, (long)clock.Elapsed.TotalMicroseconds);
        Interlocked.Exchange(ref _lastSendMicroseconds, (long)Stopwatch.GetElapsedTime(0, _sendTicks).TotalMicroseconds);
        Interlocked.Exchange(ref _lastDrainMicroseconds, (long)Stopwatch.GetElapsedTime(0, _drainTicks).TotalMicroseconds);
        Interlocked.Exchange(ref _lastEndedUnixUs, UnixMicroseconds());
    }

    /// <summary>This sink's clock as Unix microseconds (the commit timestamps of <see cref="GetCounters"/>).</summary>
    private long UnixMicroseconds() => (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;

    /// <summary>
    /// The entries in the order they must reach the kernel: first every entry without a master, then the related ones
    /// in waves, a new wave whenever an entry's master is in the current one (the replica comes masters first, by
    /// depth, so a wave holds one depth). Each wave is sent, drained and its EEXIST answers settled before the next.
    /// </summary>
    private List<IEnumerable<int>> Waves(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica)
    {
        int related = 0;
        for (int i = 0; i < replica.Count; i++)
        {
            if (replica[i].Value.HasMaster)
            {
                related++;
            }
        }

        if (related == 0)
        {
            return [Enumerable.Range(0, replica.Count)];
        }

        if (!replica[replica.Count - related].Value.HasMaster || HasPlainAfter(replica, replica.Count - related))
        {
            return WavesAsLists(replica, related);
        }

        // The contract's order (every entry without a master first, then the related ones, masters first): the waves
        // are ranges of the replica, no list of indexes.
        int plainCount = replica.Count - related;
        var ranges = new List<IEnumerable<int>> { Enumerable.Range(0, plainCount) };
        var inWave = new HashSet<ConnectionKey>();
        int start = plainCount;
        for (int i = plainCount; i < replica.Count; i++)
        {
            var kv = replica[i];
            if (i > start && inWave.Contains(kv.Value.Master))
            {
                ranges.Add(Enumerable.Range(start, i - start));
                start = i;
                inWave.Clear();
            }

            inWave.Add(kv.Key);
        }

        ranges.Add(Enumerable.Range(start, replica.Count - start));
        Interlocked.Add(ref _related, related);
        Interlocked.Add(ref _relatedWaves, ranges.Count - 1);
        return ranges;
    }

    /// <summary>True when an entry without a master comes at or after <paramref name="from"/> (not the contract's order).</summary>
    private static bool HasPlainAfter(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica, int from)
    {
        for (int i = from; i < replica.Count; i++)
        {
            if (!replica[i].Value.HasMaster)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The waves of a replica not in the contract's order: index lists (the entries without a master, then each wave).</summary>
    private List<IEnumerable<int>> WavesAsLists(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica, int related)
    {
        var plain = new List<int>(replica.Count - related);
        var waves = new List<IEnumerable<int>> { plain };
        List<int>? current = null;
        var inCurrent = new HashSet<ConnectionKey>();
        for (int i = 0; i < replica.Count; i++)
        {
            var kv = replica[i];
            if (!kv.Value.HasMaster)
            {
                plain.Add(i);
                continue;
            }

            if (current is null || inCurrent.Contains(kv.Value.Master))
            {
                current = [];
                waves.Add(current);
                inCurrent.Clear();
            }

            current.Add(i);
            inCurrent.Add(kv.Key);
        }

        Interlocked.Add(ref _related, related);
        Interlocked.Add(ref _relatedWaves, waves.Count - 1);
        return waves;
    }

    /// <summary>Creates one wave, <see cref="ChunkEntries"/> at a time (each chunk settled before the next; see <see cref="CommitChunk"/>).</summary>
    private int CommitWave(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica, IEnumerable<int> wave, long nowMs)
    {
        int ok = 0;
        using var e = wave.GetEnumerator();
        while (true)
        {
            int n = 0;
            while (n < _chunk.Length && e.MoveNext())
            {
                _chunk[n++] = e.Current;
            }

            if (n == 0)
            {
                return ok;
            }

            ok += CommitChunk(replica, new ArraySegment<int>(_chunk, 0, n), nowMs);
        }
    }

    /// <summary>Creates one chunk of a wave; EEXIST answered by update or delete + create, ENOENT (master missing) by a create without the master.</summary>
    private int CommitChunk(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica, ArraySegment<int> chunk, long nowMs)
    {
        _existing.Clear();
        _orphans.Clear();
        int ok = Send(replica, chunk, Op.Create, nowMs, _existing, _orphans);

        // EEXIST: update in place; NAT'd entries (NAT only on create) and refused updates (EBUSY): delete + create.
        if (_existing.Count > 0)
        {
            _replace.Clear();
            _update.Clear();
            _busy.Clear();
            foreach (int i in _existing)
            {
                (IsNat(replica[i], nowMs) ? _replace : _update).Add(i);
            }

            int updated = Send(replica, _update, Op.Update, nowMs, _busy, null);
            Interlocked.Add(ref _updated, updated);
            _replace.AddRange(_busy);
            int replaced = Send(replica, _replace, Op.Replace, nowMs, null, _orphans);
            Interlocked.Add(ref _replaced, replaced);
            ok += updated + replaced;
        }

        // The kernel does not hold the master (not replicated, expired, refused): the entry still flows without it.
        if (_orphans.Count > 0)
        {
            Interlocked.Add(ref _relatedMasterMissing, _orphans.Count);
            ok += Send(replica, _orphans, Op.CreateWithoutMaster, nowMs, null, null);
        }

        return ok;
    }

    public IReadOnlyDictionary<string, long> GetCounters()
    {
        long us = Interlocked.Read(ref _lastMicroseconds);
        long entries = Interlocked.Read(ref _lastEntries);
        var c = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            ["commits"] = Interlocked.Read(ref _commits),
            ["committed"] = Interlocked.Read(ref _committed),
            ["refused"] = Interlocked.Read(ref _refused),
            ["updated"] = Interlocked.Read(ref _updated),
            ["replaced"] = Interlocked.Read(ref _replaced),
            ["unmappable"] = Interlocked.Read(ref _unmappable),
            ["batches"] = Interlocked.Read(ref _batches),
            ["messages"] = Interlocked.Read(ref _messages),
            ["acks"] = Interlocked.Read(ref _acks),
            ["errors_lost"] = Interlocked.Read(ref _errorsLost),
            ["related"] = Interlocked.Read(ref _related),
            ["related_waves"] = Interlocked.Read(ref _relatedWaves),
            ["related_master_missing"] = Interlocked.Read(ref _relatedMasterMissing),
            ["last_commit_entries"] = entries,
            ["last_commit_us"] = us,
            ["last_commit_send_us"] = Interlocked.Read(ref _lastSendMicroseconds),
            ["last_commit_drain_us"] = Interlocked.Read(ref _lastDrainMicroseconds),
            ["last_commit_entries_per_second"] = us > 0 ? entries * 1_000_000 / us : 0,
            ["last_commit_committed"] = Interlocked.Read(ref _lastCommitted),
            ["last_commit_refused"] = Interlocked.Read(ref _lastRefused),
            ["last_commit_started_unix_us"] = Interlocked.Read(ref _lastStartedUnixUs),
            ["last_commit_first_batch_unix_us"] = Interlocked.Read(ref _lastFirstBatchUnixUs),
            ["last_commit_ended_unix_us"] = Interlocked.Read(ref _lastEndedUnixUs),
            ["port_id"] = _socket.PortId,
        };
        c["templates_not_installed"] = Interlocked.Read(ref _templatesNotInstalled);
        _pickup?.AddCounters(c);
        foreach (var (errno, count) in _refusedByErrno)
        {
            c["refused_" + errno] = count;
        }

        return c;
    }

    public void Dispose()
    {
        _pickup?.Dispose();
        _socket.Dispose();
    }

    private static bool IsNat(in KeyValuePair<ConnectionKey, ConnectionEntry> kv, long nowMs)
        => ConntrackMapping.TryGetCommit(kv.Key, kv.Value, nowMs, out var r) && ConntrackMapping.IsNat(r);

    private enum Op : byte
    {
        Create,
        Update,
        Replace,
        CreateWithoutMaster,
    }

    /// <summary>
    /// Sends one operation for the given replica indexes in batches; returns how many succeeded. Failures with EEXIST
    /// (create) or EBUSY (update) go to <paramref name="retry"/> when given, a create with a master refused with ENOENT
    /// to <paramref name="orphans"/> when given; the others are counted as refused.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int Send(IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>> replica, IEnumerable<int> indexes, Op op, long nowMs,
        List<int>? retry, List<int>? orphans)
    {
        int maxMessages = _slots.Length;
        var slots = _slots;
        var keys = _keys;
        var failed = _failed;
        var withMaster = _withMaster;
        int succeeded = 0;
        using var e = indexes.GetEnumerator();
        bool more = e.MoveNext();
        while (more)
        {
            var w = new NetlinkWriter(_batch);
            uint first = _sequence;
            int count = 0;
            int entries = 0;
            ushort ack = _settings.Ack ? Nl.FAck : (ushort)0;
            while (more && w.Remaining >= 2 * CtRequests.MaxMessageLength && count + 2 <= maxMessages)
            {
                int i = e.Current;
                more = e.MoveNext();
                var kv = replica[i];
                if (!ConntrackMapping.TryGetCommit(kv.Key, kv.Value, nowMs, out var r))
                {
                    if (op == Op.Create)
                    {
                        Interlocked.Increment(ref _unmappable);
                    }

                    continue;
                }

                if (op == Op.Replace)
                {
                    // The delete's failure (ENOENT: gone meanwhile) does not matter; its slot is marked so.
                    slots[count] = -1;
                    CtRequests.WriteDelete(ref w, first + (uint)count, ack, r);
                    count++;
                }

                if (op == Op.CreateWithoutMaster)
                {
                    r.HasMaster = false;
                }

                slots[count] = i;
                withMaster[count] = r.HasMaster && op != Op.Update;
                keys[entries++] = kv.Key;
                if (op == Op.Update)
                {
                    // Neither NAT nor a master can be set on an existing entry (EOPNOTSUPP); a related entry's status
                    // keeps EXPECTED (the kernel refuses to change it with EBUSY, answered by delete + create).
                    r.NatSource = default;
                    r.NatDestination = default;
                    r.HasMark = true; // also a zero mark: it clears a mark the kernel's entry has
                    if (r.HasMaster)
                    {
                        r.HasMaster = false;
                        r.Status |= Ips.Expected;
                    }

                    CtRequests.WriteNew(ref w, first + (uint)count, ack, r);
                }
                else
                {
                    CtRequests.WriteNew(ref w, first + (uint)count, (ushort)(Nl.FCreate | Nl.FExcl | ack), r);
                }

                count++;
            }

            if (count == 0)
            {
                break;
            }

            _sequence = first + (uint)count;
            Array.Clear(failed, 0, count);
            _registry.Committing(keys.AsSpan(0, entries));
            long t0 = Stopwatch.GetTimestamp();
            int sent = _socket.Send(w.Written);   // the kernel inserts the whole batch inside this call
            long t1 = Stopwatch.GetTimestamp();
            _sendTicks += t1 - t0;
            Interlocked.Increment(ref _batches);
            Interlocked.Add(ref _messages, count);
            if (sent < 0)
            {
                // The whole batch was refused by the socket layer (not by conntrack): every entry of it is refused.
                for (int s = 0; s < count; s++)
                {
                    if (slots[s] >= 0)
                    {
                        Refuse(-sent);
                    }
                }

                continue;
            }

            Drain(first, count, slots, failed, withMaster, op, retry, orphans);
            _drainTicks += Stopwatch.GetTimestamp() - t1;
            if (_firstBatchPending)
            {
                // The kernel inserted the first batch inside the send and its refusals are drained: from here the
                // commit's first entries are in the table.
                _firstBatchPending = false;
                Interlocked.Exchange(ref _lastFirstBatchUnixUs, UnixMicroseconds());
            }

            for (int s = 0; s < count; s++)
            {
                if (slots[s] >= 0 && !failed[s])
                {
                    succeeded++;
                }
            }
        }

        return succeeded;
    }

    /// <summary>
    /// Reads the kernel's answers to a batch just sent: without acks only errors, already queued (the kernel handled the
    /// batch inside the send call), so a non-blocking drain; with acks one answer per message, waited for (bounded).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Drain(uint first, int count, int[] slots, bool[] failed, bool[] withMaster, Op op, List<int>? retry, List<int>? orphans)
    {
        int answers = 0;
        long deadline = Environment.TickCount64 + 5000;
        while (true)
        {
            bool wait = _settings.Ack && answers < count && Environment.TickCount64 < deadline;
            int n = _socket.Receive(_receive, dontWait: !wait);
            if (n < 0)
            {
                if (-n == Nl.ENOBUFS)
                {
                    // Answers were dropped (receive buffer overrun): whatever they said is unknown.
                    Interlocked.Increment(ref _errorsLost);
                    continue;
                }

                if (-n is Nl.EAGAIN or Nl.EINTR && wait)
                {
                    continue;
                }

                return;
            }

            var reader = new NetlinkReader(_receive.AsSpan(0, n));
            while (reader.Next(out var m))
            {
                if (!m.TryGetError(out int error, out uint seq))
                {
                    continue;
                }

                uint slot = seq - first;
                if (slot >= (uint)count)
                {
                    continue;   // an answer to an earlier batch
                }

                answers++;
                if (error == 0)
                {
                    Interlocked.Increment(ref _acks);
                    continue;
                }

                int errno = -error;
                int index = slots[slot];
                if (index < 0)
                {
                    continue;   // the delete of a replace
                }

                failed[slot] = true;
                if (retry is not null && ((op == Op.Create && errno == Nl.EEXIST) || (op == Op.Update && errno == Nl.EBUSY)))
                {
                    retry.Add(index);
                }
                else if (orphans is not null && errno == Nl.ENOENT && withMaster[slot])
                {
                    orphans.Add(index);
                }
                else
                {
                    Refuse(errno);
                }
            }
        }
    }

    private void Refuse(int errno)
    {
        Interlocked.Increment(ref _refused);
        _refusedByErrno.AddOrUpdate(Nl.ErrnoName(errno), 1, static (_, v) => v + 1);
    }
}
