using System.Diagnostics;
using ClusterSync.Connections;
using ClusterSync.Engine;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Membership;

/// <summary>
/// Load-sharing ownership: the owners are this member (when Active) and every live Active peer; each connection
/// belongs to <see cref="Ownership.OwnerOf"/> over them, the same member for both directions. When the owner set
/// changes (a member joins or dies) this member commits into its data plane the connections it gains
/// (rendezvous hashing: only the leaving member's connections move, only to the survivors; a joining member takes
/// only its own share) together with those it took over earlier and still owns, and raises <see cref="OwnershipChanged"/>, so its data-plane source drops what it lost and
/// drives what it gained.
/// </summary>
public sealed partial class MembershipController
{
    private byte[] _owners = [];
    private List<KeyValuePair<ConnectionKey, ConnectionEntry>> _takenOver = [];

    /// <summary>The members that own connections now, ascending (load sharing; empty in high availability).</summary>
    public byte[] Owners => Volatile.Read(ref _owners);

    /// <summary>Connections this member gained at the last change of owners.</summary>
    public int LastGained { get; private set; }

    /// <summary>Times the owner set changed.</summary>
    public long OwnershipChanges { get; private set; }

    /// <summary>
    /// The owner set changed: the new owners, and the connections this member gained (already committed into its
    /// data plane). Raised on the control tick inside the controller's lock: handlers only take note.
    /// </summary>
    public event Action<byte[], IReadOnlyList<KeyValuePair<ConnectionKey, ConnectionEntry>>>? OwnershipChanged;

    /// <summary>The owner of <paramref name="key"/> now; 0 when no member owns connections (no Active member).</summary>
    public byte OwnerOf(in ConnectionKey key) => Ownership.OwnerOf(key, Owners);

    private void PromoteLoadSharing()
    {
        _lastActivePeer = 0;
        Interlocked.Increment(ref _failovers);
        Publish(MemberState.Active);
    }

    private void UpdateOwners(ReadOnlySpan<MemberView> peers, bool stalled)
    {
        Span<byte> now = stackalloc byte[peers.Length + 1];
        int n = 0;
        if (State == MemberState.Active)
        {
            now[n++] = _engine.MemberId;
        }

        foreach (var p in peers)
        {
            if (p.Alive && p.State == MemberState.Active)
            {
                now[n++] = p.Id;
            }
        }

        now = now[..n];
        now.Sort();
        var old = _owners;
        if (now.SequenceEqual(old))
        {
            return;
        }

        // A member silent while this process was itself stalled may be alive: do not move its connections away.
        if (stalled)
        {
            return;
        }

        var owners = now.ToArray();
        var sw = Stopwatch.StartNew();
        var gained = new GainedVisitor(_engine.MemberId, old, owners);
        if (State == MemberState.Active)
        {
            _engine.VisitLive(ref gained);

            // The data plane holds what it took over before and still owns, plus what it gains now (disjoint: the
            // gained ones were not this member's under the old owners). A member that comes back takes its share
            // back from here; the rest stays.
            var holding = new List<KeyValuePair<ConnectionKey, ConnectionEntry>>(_takenOver.Count + gained.Connections.Count);
            foreach (var c in _takenOver)
            {
                if (Ownership.OwnerOf(c.Key, owners) == _engine.MemberId)
                {
                    holding.Add(c);
                }
            }

            holding.AddRange(gained.Connections);
            ReplicaOrder.MastersFirst(holding); // the contract's order: masters before their related entries
            _takenOver = holding;
            _sink.Commit(holding);
            if (_sink is Templates.ITemplateSink templateSink)
            {
                templateSink.CommitTemplates(_engine.SnapshotTemplates()); // a takeover carries the live templates (docs/templates.md)
            }

            LastCommitted = holding.Count;
        }

        LastGained = gained.Connections.Count;
        Volatile.Write(ref _owners, owners);
        OwnershipChanges++;
        Log.OwnersChanged(_logger, _engine.MemberId, string.Join(',', old), string.Join(',', owners), gained.Connections.Count, LastCommitted, _sink.Name, sw.Elapsed.TotalMilliseconds);
        OwnershipChanged?.Invoke(owners, gained.Connections);
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
    }
}
