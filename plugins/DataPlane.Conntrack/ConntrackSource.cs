using System.Runtime.InteropServices;
using ClusterSync.Connections;
using ClusterSync.DataPlane;
using ClusterSync.Plugins.Conntrack.Netlink;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// Kernel conntrack events in. The event socket joins the NEW, UPDATE and DESTROY groups when the source is created; on
/// <see cref="RunAsync"/> a dedicated reader thread re-subscribes (a fresh socket, empty queue), then dumps the table on
/// a second socket, so nothing that happens during the dump is missed; the connections it announced are tracked by
/// (zone, original tuple) — never by the kernel's id — which reconciles the dump with the events read after it. An
/// overrun of the event socket's receive buffer (ENOBUFS: events were lost) is answered the same way, a fresh
/// subscription and a dump: connections not announced yet are announced, changed ones updated, and those announced but
/// gone from the kernel destroyed (counted: <c>enobufs</c>, <c>resyncs</c>, <c>resync_purged</c>).
/// Events caused by this factory's commit socket (its port id is their nlmsg_pid) are tracked but not announced.
/// </summary>
internal sealed class ConntrackSource : IConnectionSource, IDataPlaneStatus
{
    private const int BatchSize = 256;
    private readonly object _socketLock = new();
    private readonly int _receiveBufferBytes;
    private NetlinkSocket _events;
    private readonly NetlinkSocket _dump;
    private bool _disposed;
    private readonly CommitRegistry _registry;
    private readonly TimeProvider _time;
    private readonly Dictionary<ConnectionKey, Tracked> _table;
    // The masters of the tracked related connections: the kernel names the master only in the NEW event (IPCT_RELATED)
    // and in dumps, so updates are announced with the master remembered here. Few entries have one.
    private readonly Dictionary<ConnectionKey, ConnectionKey> _masters = [];
    private readonly List<ConnectionKey> _stale = [];
    private readonly ConnectionEvent[] _batch = new ConnectionEvent[BatchSize];
    private readonly byte[] _receive = new byte[128 << 10];
    private readonly byte[] _request = new byte[64];
    private readonly CancellationTokenSource _stop = new();
    private readonly Counters _c = new();
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _go = new(false);
    private CancellationToken _runToken;
    private TaskCompletionSource? _done;
    private int _runs;
    private IConnectionEventSink? _sink;
    private int _pending;
    private uint _generation;
    private uint _dumpSequence;
    private readonly TimeSpan _resyncInterval;
    private readonly AddressFilter _ignore;
    private readonly EndpointFilter? _syncLinks;

    public ConntrackSource(ConntrackSettings settings, CommitRegistry registry, TimeProvider? time = null, IReadOnlyList<SyncLinkEndpoint>? syncLinks = null)
    {
        _registry = registry;
        _registry.SourceCreated();
        _resyncInterval = settings.ResyncSeconds > 0 ? TimeSpan.FromSeconds(settings.ResyncSeconds) : Timeout.InfiniteTimeSpan;
        EventsSysctl = ReadEventsSysctl();
        _time = time ?? TimeProvider.System;
        _table = new Dictionary<ConnectionKey, Tracked>(settings.ExpectedConnections);
        _receiveBufferBytes = settings.ReceiveBufferBytes;
        _ignore = new AddressFilter(settings.IgnoredNetworks);
        _syncLinks = syncLinks is { Count: > 0 } ? new EndpointFilter(syncLinks) : null;

        // Subscribe now, long before this member may run the source: with nf_conntrack_events=2 (the kernel's default)
        // an entry created while nobody listens never reports an update or its destroy, and that would include the
        // entries our own sink commits on failover. SO_RCVBUFFORCE needs CAP_NET_ADMIN: without it the source fails
        // here, at creation, with the reason.
        _events = OpenEventSocket(out int inEffect);
        ReceiveBufferBytes = inEffect;
        NetlinkSocket? dump = null;
        try
        {
            dump = NetlinkSocket.Open("dump socket");
            dump.ForceReceiveBuffer(4 << 20, "dump socket");
            dump.SetReceiveTimeout(TimeSpan.FromSeconds(5), "dump socket");
        }
        catch
        {
            _events.Dispose();
            dump?.Dispose();
            throw;
        }

        _dump = dump;
        _thread = new Thread(ReaderThread) { IsBackground = true, Name = "cs-conntrack-events" };
        _thread.Start();
    }

    public string Name => "conntrack";

    /// <summary>The event socket's receive buffer as the kernel set it (it doubles what was asked).</summary>
    public int ReceiveBufferBytes { get; }

    /// <summary><c>net.netfilter.nf_conntrack_events</c> of the namespace when the source was created (-1: unreadable).</summary>
    public int EventsSysctl { get; }

    public Task RunAsync(IConnectionEventSink sink, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sink);
        if (Interlocked.Exchange(ref _runs, 1) != 0)
        {
            throw new InvalidOperationException("the conntrack source runs once");
        }

        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        _sink = sink;
        _runToken = cancellationToken;
        _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = _done.Task;
        _go.Set();
        return done;
    }

    /// <summary>
    /// The reader thread, started by the constructor so it is in the network namespace the source was created in (a new
    /// thread inherits its creator's; the event socket is re-opened from this thread after an overrun). It waits for
    /// <see cref="RunAsync"/> (or disposal), then reads.
    /// </summary>
    private void ReaderThread()
    {
        WaitHandle.WaitAny([_go.WaitHandle, _stop.Token.WaitHandle]);
        if (!_go.IsSet)
        {
            return;   // disposed without running
        }

        var cancellationToken = _runToken;
        var done = _done!;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        try
        {
            Run(linked.Token);
            if (cancellationToken.IsCancellationRequested)
            {
                done.TrySetCanceled(cancellationToken);
            }
            else
            {
                done.TrySetResult();
            }
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            done.TrySetCanceled(cancellationToken.IsCancellationRequested ? cancellationToken : linked.Token);
        }
        catch (Exception ex)
        {
            done.TrySetException(ex);
        }
    }

    public IReadOnlyDictionary<string, long> GetCounters()
    {
        var c = _c.Snapshot(Volatile.Read(ref _c.Tracked), ReceiveBufferBytes);
        c["events_sysctl"] = EventsSysctl;
        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_thread != Thread.CurrentThread)
        {
            _thread.Join(TimeSpan.FromSeconds(5));
        }

        lock (_socketLock)
        {
            _disposed = true;
            _events.Dispose();
        }

        _dump.Dispose();
        _stop.Dispose();
        _go.Dispose();
    }

    /// <summary>
    /// A socket subscribed to the NEW, UPDATE and DESTROY groups, its receive queue empty. Throws
    /// <see cref="ConntrackAccessException"/> without CAP_NET_ADMIN.
    /// </summary>
    private NetlinkSocket OpenEventSocket(out int receiveBufferInEffect)
    {
        var socket = NetlinkSocket.Open("event socket");
        try
        {
            receiveBufferInEffect = socket.ForceReceiveBuffer(_receiveBufferBytes, "event socket");
            socket.SetReceiveTimeout(TimeSpan.FromMilliseconds(200), "event socket");
            socket.JoinGroup(Nl.GroupNew, "event socket");
            socket.JoinGroup(Nl.GroupUpdate, "event socket");
            socket.JoinGroup(Nl.GroupDestroy, "event socket");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Replaces the event socket by a fresh subscription (before a dump): what the old one queued is older than the dump
    /// that follows and is discarded with it; the new one holds, in order, every event from now on. This is what makes a
    /// resync exact: after an overrun the kernel reports ENOBUFS once and then drops silently until the receive queue has
    /// been read empty (netlink's congested bit), so the old socket would have lost, without a word, the events of
    /// everything created while the dump ran. The new socket subscribes before the old one closes, so the namespace never
    /// lacks a listener (nf_conntrack_events=2). Returns false when the source is disposed or the socket cannot be opened
    /// (then the old one stays and the failure is counted).
    /// </summary>
    private bool Resubscribe()
    {
        NetlinkSocket fresh;
        try
        {
            fresh = OpenEventSocket(out _);
        }
        catch (Exception ex) when (ex is ConntrackAccessException or ConntrackUnavailableException)
        {
            Interlocked.Increment(ref _c.ResubscribeFailures);
            return false;
        }

        NetlinkSocket old;
        lock (_socketLock)
        {
            if (_disposed)
            {
                fresh.Dispose();
                return false;
            }

            old = _events;
            _events = fresh;
        }

        old.Dispose();
        Interlocked.Increment(ref _c.Resubscribes);
        return true;
    }

    private void Run(CancellationToken stop)
    {
        // Subscribed since creation; what queued before now (perhaps with an overrun, and the congested state that makes
        // the kernel drop silently until the queue is read empty) is superseded by the dump that follows: a fresh
        // subscription first, then the dump. An entry that changes while the dump runs is in the dump, in an event read
        // after it, or both.
        Resubscribe();
        Dump(resync: false, stop);

        long nextResync = NextResync();
        while (!stop.IsCancellationRequested)
        {
            if (Environment.TickCount64 >= nextResync)
            {
                // Periodic reconciliation (resyncSeconds): catches what no event reports, such as the destroy of an
                // entry created while nobody listened (nf_conntrack_events=2).
                Interlocked.Increment(ref _c.PeriodicResyncs);
                Dump(resync: true, stop);
                nextResync = NextResync();
            }

            int n = _events.Receive(_receive);
            while (n > 0)
            {
                Handle(n);
                if (_pending >= BatchSize - 16)
                {
                    Flush();
                }

                n = _events.Receive(_receive, dontWait: true);
            }

            Flush();
            switch (-n)
            {
                case Nl.EAGAIN or Nl.EINTR or 0:
                    break;
                case Nl.ENOBUFS:
                    // Events were lost, and the kernel will drop more without a word until this queue is read empty:
                    // a fresh subscription, then a dump; the stale queue goes with the old socket.
                    Interlocked.Increment(ref _c.Enobufs);
                    Resubscribe();
                    Dump(resync: true, stop);
                    break;
                case 9:   // EBADF: disposed
                    return;
                default:
                    Interlocked.Increment(ref _c.NetlinkErrors);
                    break;
            }
        }
    }

    /// <summary>Handles one datagram as if it came from the event socket (tests; the source must not be running).</summary>
    internal void HandleDatagram(ReadOnlySpan<byte> datagram, IConnectionEventSink sink)
    {
        _sink = sink;
        datagram.CopyTo(_receive);
        Handle(datagram.Length);
        Flush();
    }

    private long NextResync() => _resyncInterval == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)_resyncInterval.TotalMilliseconds;

    private static int ReadEventsSysctl()
    {
        try
        {
            return int.Parse(File.ReadAllText("/proc/sys/net/netfilter/nf_conntrack_events").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return -1;
        }
    }

    private void Handle(int length)
    {
        var reader = new NetlinkReader(_receive.AsSpan(0, length));
        long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        while (reader.Next(out var m))
        {
            if (m.Type is Nl.CtNew or Nl.CtDelete)
            {
                if (CtParser.TryParse(m, out var r))
                {
                    Apply(r, fromDump: false, nowMs);
                }
                else
                {
                    Interlocked.Increment(ref _c.Malformed);
                }
            }
            else if (m.Type == Nl.MsgError && m.TryGetError(out int error, out _) && error != 0)
            {
                Interlocked.Increment(ref _c.NetlinkErrors);
            }
        }

        if (reader.Malformed)
        {
            Interlocked.Increment(ref _c.Malformed);
        }
    }

    /// <summary>Dumps the table and reconciles; on a resync, connections announced but not in the dump are destroyed.</summary>
    private void Dump(bool resync, CancellationToken stop)
    {
        _generation++;
        uint sequence = ++_dumpSequence;
        long commits = _registry.DumpStarting();
        var w = new NetlinkWriter(_request);
        CtRequests.WriteDump(ref w, sequence);
        int sent = _dump.Send(w.Written);
        if (sent < 0)
        {
            Interlocked.Increment(ref _c.DumpFailures);
            return;
        }

        bool done = false;
        long entries = 0;
        while (!done)
        {
            stop.ThrowIfCancellationRequested();
            int n = _dump.Receive(_receive);
            if (n < 0)
            {
                if (-n == Nl.EINTR)
                {
                    continue;
                }

                Interlocked.Increment(ref _c.DumpFailures);
                Flush();
                return;   // timed out or failed: no purge on a partial dump
            }

            long nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var reader = new NetlinkReader(_receive.AsSpan(0, n));
            while (reader.Next(out var m))
            {
                if (m.Sequence != sequence)
                {
                    continue;   // the tail of an abandoned dump
                }

                if (m.Type == Nl.MsgDone)
                {
                    done = true;
                    break;
                }

                if (m.Type == Nl.MsgError)
                {
                    if (m.TryGetError(out int error, out _) && error != 0)
                    {
                        Interlocked.Increment(ref _c.DumpFailures);
                        Flush();
                        if (-error is Nl.EPERM or Nl.EACCES)
                        {
                            throw new ConntrackAccessException("dump", "IPCTNL_MSG_CT_GET", -error);
                        }

                        return;
                    }

                    continue;
                }

                if (m.Type != Nl.CtNew)
                {
                    continue;
                }

                if (CtParser.TryParse(m, out var r))
                {
                    entries++;
                    Apply(r, fromDump: true, nowMs);
                    if (_pending >= BatchSize - 16)
                    {
                        Flush();
                    }
                }
                else
                {
                    Interlocked.Increment(ref _c.Malformed);
                }
            }

            if (reader.Malformed)
            {
                Interlocked.Increment(ref _c.Malformed);
            }
        }

        if (resync)
        {
            // Announced, but the kernel no longer has them: their destroy events were among those lost.
            _stale.Clear();
            foreach (var (key, t) in _table)
            {
                if (t.Generation != _generation)
                {
                    _stale.Add(key);
                }
            }

            foreach (var key in _stale)
            {
                _table.Remove(key);
                _masters.Remove(key);
                Emit(new ConnectionEvent { Kind = ConnectionEventKind.Destroy, Key = key });
                Interlocked.Increment(ref _c.AnnouncedDestroy);
            }

            Interlocked.Add(ref _c.ResyncPurged, _stale.Count);
            Interlocked.Increment(ref _c.Resyncs);
        }

        Flush();
        _registry.DumpCompleted(commits);
        Interlocked.Increment(ref _c.Dumps);
        Interlocked.Add(ref _c.DumpEntries, entries);
        Volatile.Write(ref _c.Tracked, _table.Count);
    }

    private void Apply(in CtRecord r, bool fromDump, long nowMs)
    {
        if (!ConntrackMapping.TryGetKey(r, out var key))
        {
            Interlocked.Increment(ref _c.Unmappable);
            return;
        }

        ref readonly var o = ref r.Original;
        if (_ignore.Matches(o.SrcHi, o.SrcLo) || _ignore.Matches(o.DstHi, o.DstLo))
        {
            // Loopback, the sync link, management (ignore): never tracked, never announced.
            Interlocked.Increment(ref _c.Ignored);
            return;
        }

        if (_syncLinks is not null && o.HasPorts
            && (_syncLinks.Matches(o.SrcHi, o.SrcLo, o.SrcPort, o.Protocol) || _syncLinks.Matches(o.DstHi, o.DstLo, o.DstPort, o.Protocol)))
        {
            // The node's own delta or full sync traffic: a flow of this firewall, meaningless on the peer.
            Interlocked.Increment(ref _c.Ignored);
            Interlocked.Increment(ref _c.SyncLinkIgnored);
            return;
        }

        bool echo = !fromDump && _registry.IsOwnPort(r.PortId);
        if (r.IsDelete)
        {
            Interlocked.Increment(ref _c.EventsDestroy);
            _masters.Remove(key);
            if (!_table.Remove(key))
            {
                Interlocked.Increment(ref _c.DestroyUnknown);
            }
            else if (echo)
            {
                Interlocked.Increment(ref _c.EchoSuppressed);
            }
            else
            {
                var e = new ConnectionEvent { Kind = ConnectionEventKind.Destroy, Key = key };
                if (ConntrackMapping.TryGetEntry(r, key, ProtocolState.None, nowMs, out var entry, out var counters))
                {
                    e.Entry = entry;
                    e.Counters = counters;
                    e.HasCounters = r.HasCounters;
                }

                Emit(e);
                Interlocked.Increment(ref _c.AnnouncedDestroy);
            }

            Volatile.Write(ref _c.Tracked, _table.Count);
            return;
        }

        if (!fromDump)
        {
            Interlocked.Increment(ref (r.Flags & Nl.FCreate) != 0 ? ref _c.EventsNew : ref _c.EventsUpdate);
        }

        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_table, key, out bool known);
        if (!ConntrackMapping.TryGetEntry(r, key, known ? slot.State : ProtocolState.None, nowMs, out var mapped, out var c))
        {
            if (!known)
            {
                _table.Remove(key);
            }

            Interlocked.Increment(ref _c.Unmappable);
            return;
        }

        bool masterChanged = false;
        if (mapped.HasMaster)
        {
            ref var m = ref CollectionsMarshal.GetValueRefOrAddDefault(_masters, key, out bool hadMaster);
            masterChanged = !hadMaster || !m.Equals(mapped.Master);
            m = mapped.Master;
            Interlocked.Increment(ref _c.RelatedWithMaster);
        }
        else if (known && _masters.TryGetValue(key, out var remembered))
        {
            mapped.Master = remembered; // an update names no master: the one its NEW event named still holds
        }

        bool changed = !known || slot.State != mapped.State || slot.Status != mapped.Status || slot.Mark != mapped.Mark || masterChanged;
        slot = new Tracked(mapped.State, mapped.Status, mapped.Mark, _generation);
        Volatile.Write(ref _c.Tracked, _table.Count);
        if (echo || (fromDump && !known && _registry.WasCommitted(key)))
        {
            Interlocked.Increment(ref _c.EchoSuppressed);
            return;
        }

        if (fromDump && !changed)
        {
            return;   // the dump confirms what was announced
        }

        var ev = new ConnectionEvent { Kind = known ? ConnectionEventKind.Update : ConnectionEventKind.New, Key = key, Entry = mapped, Counters = c, HasCounters = r.HasCounters };
        Emit(ev);
        Interlocked.Increment(ref known ? ref _c.AnnouncedUpdate : ref _c.AnnouncedNew);
    }

    private void Emit(in ConnectionEvent e)
    {
        _batch[_pending++] = e;
        if (_pending == BatchSize)
        {
            Flush();
        }
    }

    private void Flush()
    {
        if (_pending == 0)
        {
            return;
        }

        int n = _pending;
        _pending = 0;
        _sink!.Submit(_batch.AsSpan(0, n));
        Interlocked.Add(ref _c.Submitted, n);
    }

    private readonly record struct Tracked(ProtocolState State, ConnectionStatus Status, uint Mark, uint Generation);

    private sealed class Counters
    {
        public long EventsNew;
        public long EventsUpdate;
        public long EventsDestroy;
        public long AnnouncedNew;
        public long AnnouncedUpdate;
        public long AnnouncedDestroy;
        public long Submitted;
        public long EchoSuppressed;
        public long DestroyUnknown;
        public long Dumps;
        public long DumpEntries;
        public long DumpFailures;
        public long Enobufs;
        public long Resyncs;
        public long PeriodicResyncs;
        public long ResyncPurged;
        public long Unmappable;
        public long Ignored;
        public long Malformed;
        public long NetlinkErrors;
        public long Resubscribes;
        public long ResubscribeFailures;
        public long RelatedWithMaster;
        public long SyncLinkIgnored;
        public int Tracked;

        public Dictionary<string, long> Snapshot(int tracked, int receiveBuffer) => new(StringComparer.Ordinal)
        {
            ["events_new"] = Interlocked.Read(ref EventsNew),
            ["events_update"] = Interlocked.Read(ref EventsUpdate),
            ["events_destroy"] = Interlocked.Read(ref EventsDestroy),
            ["announced_new"] = Interlocked.Read(ref AnnouncedNew),
            ["announced_update"] = Interlocked.Read(ref AnnouncedUpdate),
            ["announced_destroy"] = Interlocked.Read(ref AnnouncedDestroy),
            ["submitted"] = Interlocked.Read(ref Submitted),
            ["echo_suppressed"] = Interlocked.Read(ref EchoSuppressed),
            ["destroy_unknown"] = Interlocked.Read(ref DestroyUnknown),
            ["dumps"] = Interlocked.Read(ref Dumps),
            ["dump_entries"] = Interlocked.Read(ref DumpEntries),
            ["dump_failures"] = Interlocked.Read(ref DumpFailures),
            ["enobufs"] = Interlocked.Read(ref Enobufs),
            ["resyncs"] = Interlocked.Read(ref Resyncs),
            ["resync_purged"] = Interlocked.Read(ref ResyncPurged),
            ["periodic_resyncs"] = Interlocked.Read(ref PeriodicResyncs),
            ["unmappable"] = Interlocked.Read(ref Unmappable),
            ["ignored"] = Interlocked.Read(ref Ignored),
            ["malformed"] = Interlocked.Read(ref Malformed),
            ["netlink_errors"] = Interlocked.Read(ref NetlinkErrors),
            ["resubscribes"] = Interlocked.Read(ref Resubscribes),
            ["resubscribe_failures"] = Interlocked.Read(ref ResubscribeFailures),
            ["master_seen"] = Interlocked.Read(ref RelatedWithMaster),
            ["sync_link_ignored"] = Interlocked.Read(ref SyncLinkIgnored),
            ["tracked"] = tracked,
            ["receive_buffer_bytes"] = receiveBuffer,
        };
    }
}
