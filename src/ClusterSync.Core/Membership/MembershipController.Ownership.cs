using ClusterSync.Connections;
using ClusterSync.Engine;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Membership;

/// <summary>What the last ownership commit of this member took (Unix ms on this machine's clock, durations in ms).</summary>
/// <param name="StartedUnixMs">When the control tick saw the owner set change and started the commit.</param>
/// <param name="CommitStartedUnixMs">When the share was handed to the data plane (the walk of the table done).</param>
/// <param name="FinishedUnixMs">When the sink's commit returned.</param>
/// <param name="WalkMs">Collecting the share: the walk of the table in bounded steps, and the order of the replica.</param>
/// <param name="CommitMs">The sink's commit (and the templates').</param>
/// <param name="Gained">Connections gained at this change.</param>
/// <param name="Holding">Connections committed: the gained ones and those taken over earlier and still owned.</param>
/// <param name="ControlTicks">Control ticks that ran while the commit was under way (it is off the tick).</param>
public sealed record OwnershipCommitReport(double StartedUnixMs, double CommitStartedUnixMs, double FinishedUnixMs, double WalkMs, double CommitMs,
    int Gained, int Holding, long ControlTicks);

/// <summary>
/// Load-sharing ownership: the owners are this member (when Active) and every live Active peer; each connection
/// belongs to <see cref="Ownership.OwnerOf"/> over them, the same member for both directions. When the owner set
/// changes (a member joins or dies) this member commits into its data plane the connections it gains
/// (rendezvous hashing: only the leaving member's connections move, only to the survivors; a joining member takes
/// only its own share) together with those it took over earlier and still owns, and raises <see cref="OwnershipChanged"/>,
/// so its data-plane source drops what it lost and drives what it gained.
/// <para>
/// The commit runs off the control tick, as a promotion's does (<see cref="OwnershipRunner"/>: a <c>cs-own-&lt;id&gt;</c>
/// thread in a node, inline with a test clock, so a stepped run stays deterministic): the table is walked
/// <see cref="OwnershipWalkSlots"/> slots per hold of its lock, then the share goes to the sink. Heartbeats and the control
/// tick go on meanwhile; the member stays Active (its peers' owner sets do not change), and <see cref="Owners"/> (what
/// the data-plane source routes by) moves to the new set only on the tick that sees the commit done, so the source never
/// drives a connection its data plane does not hold yet. The owner set changing again while a commit runs cancels it (a
/// commit already inside the sink finishes first, and the next one supersedes it: commits into the sink never overlap)
/// and a new commit starts from the last completed one: a stale share is never left committed.
/// </para>
/// </summary>
public sealed partial class MembershipController
{
    /// <summary>Table slots an ownership commit walks per hold of the table lock (as the promotion's snapshot).</summary>
    internal const int OwnershipWalkSlots = 16_384;

    private byte[] _owners = [];
    private List<KeyValuePair<ConnectionKey, ConnectionEntry>> _takenOver = [];
    private OwnershipCommit? _ownershipCommit;
    private bool _sinkAhead;                 // a cancelled commit reached the sink: it holds what the owners do not say
    private long _ownershipRetryTimestamp;   // after a failed commit: not before this
    private long _ownershipCommitsCancelled;
    private OwnershipCommitReport? _lastOwnershipCommit;
    private readonly object _commitGate = new(); // one commit into the sink at a time (a cancelled one may still be inside)

    /// <summary>The members that own connections now, ascending (load sharing; empty in high availability).</summary>
    public byte[] Owners => Volatile.Read(ref _owners);

    /// <summary>Connections this member gained at the last change of owners.</summary>
    public int LastGained { get; private set; }

    /// <summary>Times the owner set changed.</summary>
    public long OwnershipChanges { get; private set; }

    /// <summary>The owner set an ownership commit under way is for (null when none runs).</summary>
    public byte[]? CommittingOwners => Volatile.Read(ref _ownershipCommit)?.To;

    /// <summary>Ownership commits cancelled because the owner set changed again while they ran.</summary>
    public long OwnershipCommitsCancelled => Interlocked.Read(ref _ownershipCommitsCancelled);

    /// <summary>The last completed ownership commit (null before the first).</summary>
    public OwnershipCommitReport? LastOwnershipCommit => Volatile.Read(ref _lastOwnershipCommit);

    /// <summary>
    /// Runs an ownership commit (the walk of the table, then the sink's commit) away from the control tick. The default
    /// is a background thread per commit with the system clock (owner sets change rarely), and inline with a test clock.
    /// </summary>
    public Action<Action> OwnershipRunner { get; set; }

    /// <summary>
    /// The owner set changed: the new owners, and the connections this member gained (already committed into its
    /// data plane). Raised on the control tick inside the controller's lock: handlers only take note.
    /// </summary>
    public event Action<byte[], IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>>>? OwnershipChanged;

    /// <summary>The owner of <paramref name="key"/> now; 0 when no member owns connections (no Active member).</summary>
    public byte OwnerOf(in ConnectionKey key) => Ownership.OwnerOf(key, Owners);

    private void RunOnOwnershipThread(Action work)
        => new Thread(() => work()) { IsBackground = true, Name = $"cs-own-{_engine.MemberId}" }.Start();

    private void PromoteLoadSharing()
    {
        _lastActivePeer = 0;
        Interlocked.Increment(ref _failovers);
        Publish(MemberState.Active);
    }

    private void UpdateOwners(ReadOnlySpan<MemberView> peers, bool stalled, long now)
    {
        Span<byte> current = stackalloc byte[peers.Length + 1];
        int n = 0;
        if (State == MemberState.Active)
        {
            current[n++] = _engine.MemberId;
        }

        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active)
            {
                current[n++] = p.Id;
            }
        }

        current = current[..n];
        current.Sort();

        if (_ownershipCommit is { } running)
        {
            if (State == MemberState.Active && current.SequenceEqual(running.To))
            {
                running.ControlTicks++;
                LookAtOwnershipCommit(running, now);
                return;
            }

            // A change seen while this process was stalled is no evidence (a silent member may be alive): let the
            // commit run on; it is looked at again once the stall's hold is over.
            if (stalled && State == MemberState.Active)
            {
                running.ControlTicks++;
                return;
            }

            CancelOwnershipCommit(running, current);
        }

        if (current.SequenceEqual(_owners) && !(_sinkAhead && State == MemberState.Active))
        {
            return;
        }

        // A member silent while this process was itself stalled may be alive: do not move its connections away.
        if (stalled)
        {
            return;
        }

        var owners = current.ToArray();
        if (State != MemberState.Active)
        {
            // Not an owner itself: nothing to commit into its data plane.
            var old = _owners;
            LastGained = 0;
            Volatile.Write(ref _owners, owners);
            OwnershipChanges++;
            Log.OwnersChanged(_logger, _engine.MemberId, string.Join(',', old), string.Join(',', owners), 0, LastCommitted, _sink.Name, 0);
            OwnershipChanged?.Invoke(owners, []);
            return;
        }

        if (now < _ownershipRetryTimestamp)
        {
            return;
        }

        var job = new OwnershipCommit(_owners, owners, _takenOver, UnixMs());
        _ownershipCommit = job;
        Log.OwnershipCommitStarted(_logger, _engine.MemberId, string.Join(',', job.From), string.Join(',', owners));
        OwnershipRunner(() => RunOwnershipCommit(job));
        LookAtOwnershipCommit(job, now); // done at once when it runs inline
    }

    /// <summary>The control tick's look at the commit under way for the owner set it still sees.</summary>
    private void LookAtOwnershipCommit(OwnershipCommit job, long now)
    {
        if (Volatile.Read(ref job.Failure) is { } failure)
        {
            _ownershipCommit = null;
            _sinkAhead = true; // whatever part of it reached the sink: the next commit replaces it
            _ownershipRetryTimestamp = now + (long)(_engine.Options.DeadInterval.TotalMilliseconds * _time.TimestampFrequency / 1000.0);
            Log.OwnershipCommitFailed(_logger, _engine.MemberId, string.Join(',', job.To), failure);
            return;
        }

        if (!Volatile.Read(ref job.Done))
        {
            return;
        }

        _ownershipCommit = null;
        _sinkAhead = false; // the sink holds this commit's share: whatever a cancelled one left is replaced
        var holding = job.Holding!;
        var gained = job.Gained!;
        _takenOver = holding;
        LastCommitted = holding.Count;
        double finished = UnixMs();
        Volatile.Write(ref _lastOwnershipCommit, new OwnershipCommitReport(job.StartedUnixMs, job.CommitStartedUnixMs, job.FinishedUnixMs, job.WalkMs, job.CommitMs,
            gained.Count, holding.Count, job.ControlTicks));
        if (job.To.AsSpan().SequenceEqual(_owners))
        {
            // The owners are what they were: this commit only replaced what a cancelled one left in the sink.
            Log.OwnershipRecommitted(_logger, _engine.MemberId, string.Join(',', job.To), holding.Count, _sink.Name);
            return;
        }

        var old = _owners;
        LastGained = gained.Count;
        Volatile.Write(ref _owners, job.To);
        OwnershipChanges++;
        Log.OwnersChanged(_logger, _engine.MemberId, string.Join(',', old), string.Join(',', job.To), gained.Count, holding.Count, _sink.Name, finished - job.StartedUnixMs);
        OwnershipChanged?.Invoke(job.To, gained);
    }

    /// <summary>The owner set changed again (or this member stopped being Active) while a commit ran: it must not land.</summary>
    private void CancelOwnershipCommit(OwnershipCommit job, ReadOnlySpan<byte> current)
    {
        _ownershipCommit = null;
        Volatile.Write(ref job.Cancelled, true);
        int was = Interlocked.CompareExchange(ref job.Stage, OwnershipCommit.CancelledStage, OwnershipCommit.Walking);
        bool reachedSink = was == OwnershipCommit.InSink;
        _sinkAhead |= reachedSink;
        Interlocked.Increment(ref _ownershipCommitsCancelled);
        Log.OwnershipCommitCancelled(_logger, _engine.MemberId, string.Join(',', job.To), string.Join(',', current.ToArray()), reachedSink);
    }

    /// <summary>On the runner: collects the share in bounded steps, then commits it unless cancelled meanwhile.</summary>
    private void RunOwnershipCommit(OwnershipCommit job)
    {
        try
        {
            long started = _time.GetTimestamp();
            var gained = new GainedVisitor(_engine.MemberId, job.From, job.To);
            for (int cursor = 0; cursor >= 0;)
            {
                if (Volatile.Read(ref job.Cancelled))
                {
                    return;
                }

                cursor = _engine.VisitLive(ref gained, cursor, OwnershipWalkSlots);
            }

            // The data plane holds what it took over before and still owns, plus what it gains now (disjoint: the
            // gained ones were not this member's under the old owners). A member that comes back takes its share
            // back from here; the rest stays.
            var holding = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(job.Previous.Count + gained.Connections.Count);
            foreach (var c in job.Previous)
            {
                if (Ownership.OwnerOf(c.Key, job.To) == _engine.MemberId)
                {
                    holding.Add(c);
                }
            }

            holding.AddRange(gained.Connections);
            ReplicaOrder.MastersFirst(holding); // the contract's order: masters before their related entries
            job.WalkMs = ElapsedSince(started);
            lock (_commitGate)
            {
                if (Interlocked.CompareExchange(ref job.Stage, OwnershipCommit.InSink, OwnershipCommit.Walking) != OwnershipCommit.Walking)
                {
                    return; // cancelled: a newer owner set is being committed instead
                }

                long commit = _time.GetTimestamp();
                job.CommitStartedUnixMs = UnixMs();
                _sink.Commit(holding);
                if (_sink is Templates.ITemplateSink templateSink)
                {
                    templateSink.CommitTemplates(_engine.SnapshotTemplates()); // a takeover carries the live templates (docs/templates.md)
                }

                job.CommitMs = ElapsedSince(commit);
                job.FinishedUnixMs = UnixMs();
            }

            job.Gained = gained.Connections;
            job.Holding = holding;
            Volatile.Write(ref job.Done, true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Volatile.Write(ref job.Failure, ex);
        }
    }

    /// <summary>Stops an ownership commit under way (a clean stop): a commit already inside the sink finishes.</summary>
    private void CancelOwnershipCommitOnStop()
    {
        lock (_sync)
        {
            if (_ownershipCommit is { } job)
            {
                _ownershipCommit = null;
                Volatile.Write(ref job.Cancelled, true);
                Interlocked.CompareExchange(ref job.Stage, OwnershipCommit.CancelledStage, OwnershipCommit.Walking);
            }
        }
    }

    /// <summary>One ownership commit under way: written by the runner, read by the control tick.</summary>
    private sealed class OwnershipCommit(byte[] from, byte[] to, List<KeyValuePair<ConnectionKey, ConnectionEntry>> previous, double startedUnixMs)
    {
        public const int Walking = 0;
        public const int InSink = 1;
        public const int CancelledStage = 2;

        public byte[] From { get; } = from;

        public byte[] To { get; } = to;

        /// <summary>What the last completed commit held (never changed: a completed commit replaces the list).</summary>
        public List<KeyValuePair<ConnectionKey, ConnectionEntry>> Previous { get; } = previous;

        public double StartedUnixMs { get; } = startedUnixMs;

        public long ControlTicks { get; set; } // control tick only

        public int Stage;

        public bool Cancelled;

        public bool Done;

        public Exception? Failure;

        public List<KeyValuePair<ConnectionKey, ConnectionEntry>>? Gained { get; set; }

        public List<KeyValuePair<ConnectionKey, ConnectionEntry>>? Holding { get; set; }

        public double WalkMs { get; set; }

        public double CommitMs { get; set; }

        public double CommitStartedUnixMs { get; set; }

        public double FinishedUnixMs { get; set; }
    }

    /// <summary>Collects the live connections this member owns under the new owners and did not under the old.</summary>
    private struct GainedVisitor(byte self, byte[] oldOwners, byte[] newOwners) : ILiveConnectionVisitor
    {
        public List<KeyValuePair<ConnectionKey, ConnectionEntry>> Connections { get; } = [];

        public readonly void Visit(in ConnectionKey key, in ConnectionEntry entry)
        {
            if (Ownership.OwnerOf(key, newOwners) == self && Ownership.OwnerOf(key, oldOwners) != self)
            {
                Connections.Add(new(key, entry));
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1305, LogLevel.Warning, "Member {Member}: owners {Old} -> {New}: took over {Connections} connections; {Holding} taken over in all, committed into the {Sink} data plane in {Milliseconds:F1} ms")]
        public static partial void OwnersChanged(ILogger logger, byte member, string old, string @new, int connections, int holding, string sink, double milliseconds);

        [LoggerMessage(1332, LogLevel.Information, "Member {Member}: owners {Old} -> {New}: committing its share off the control tick")]
        public static partial void OwnershipCommitStarted(ILogger logger, byte member, string old, string @new);

        [LoggerMessage(1333, LogLevel.Warning, "Member {Member}: the owners changed to {Now} while the share of owners {Target} was being committed: that commit is cancelled (it had reached the data plane: {ReachedSink}); the next one starts from the last completed commit")]
        public static partial void OwnershipCommitCancelled(ILogger logger, byte member, string target, string now, bool reachedSink);

        [LoggerMessage(1334, LogLevel.Error, "Member {Member}: committing the share of owners {Target} failed; the owners stay as they were and the commit is tried again in one dead interval")]
        public static partial void OwnershipCommitFailed(ILogger logger, byte member, string target, Exception exception);

        [LoggerMessage(1335, LogLevel.Information, "Member {Member}: owners {Owners} unchanged; its share ({Holding} connections) committed into the {Sink} data plane again over what a cancelled commit left")]
        public static partial void OwnershipRecommitted(ILogger logger, byte member, string owners, int holding, string sink);
    }
}
