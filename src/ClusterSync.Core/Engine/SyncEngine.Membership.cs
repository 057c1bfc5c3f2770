using ClusterSync.Membership;

namespace ClusterSync.Engine;

public sealed partial class SyncEngine
{
    /// <summary>Raised at the end of every control tick (timer thread, outside the engine's locks).</summary>
    public event Action? Ticked;

    /// <summary>What the heartbeats say of each peer: id, priority, state, and whether it was heard within the dead interval.</summary>
    public int GetPeerViews(Span<MemberView> views)
    {
        long now = _time.GetTimestamp();
        int n = 0;
        foreach (var p in _peers)
        {
            if (n == views.Length)
            {
                break;
            }

            // A peer heard only through data (its heartbeats lost so far) is alive, but its state is unknown: reporting
            // the default (Init) would make a joiner take the cluster for forming and start as its first member while
            // that peer is Active (simulator seed 854). Membership sees it once a heartbeat says what it is.
            var s = ReadPeerStatus(p, now);
            bool live = s.Live && Volatile.Read(ref p.StateHeard);
            views[n++] = new MemberView(s.MemberId, s.Priority, live ? (MemberState)s.State : MemberState.Down, live);
        }

        return n;
    }

    /// <summary>Milliseconds since <paramref name="member"/> was last heard (authenticated), or -1 if never.</summary>
    internal long LastHeardAgoMs(byte member)
    {
        var p = _peersById[member];
        long heard = p is null ? 0 : Volatile.Read(ref p.LastHeardTimestamp);
        return heard == 0 ? -1 : Elapsed(heard, _time.GetTimestamp(), _time);
    }
}
