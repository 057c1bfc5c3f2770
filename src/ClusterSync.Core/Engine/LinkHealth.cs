using ClusterSync.Protocol;

namespace ClusterSync.Engine;

/// <summary>What one member knows of one sync link toward one peer (a copy for status output).</summary>
/// <param name="LinkId">The link's configured id.</param>
/// <param name="Up">Healthy in both directions: the peer's heartbeats arrive on it and the peer reports hearing ours.</param>
/// <param name="HeardAgeMs">Milliseconds since a heartbeat the peer sent on this link arrived on it; null when never.</param>
/// <param name="PeerHearsUs">The peer's latest heartbeat says it hears this member on the link.</param>
/// <param name="Carrying">Data, acks and NACKs toward the peer travel on this link now.</param>
public readonly record struct LinkStatus(byte LinkId, bool Up, long? HeardAgeMs, bool PeerHearsUs, bool Carrying);

/// <summary>
/// Health of every sync link toward every peer, and the link each peer's traffic takes. Heartbeats go on every link;
/// a link is up toward a peer while (1) an authenticated heartbeat that the peer sent on that link arrived on it
/// within the dead interval and (2) the peer's latest heartbeat reports hearing this member on it — so a link that
/// silently drops traffic in either direction goes down. Traffic takes the lowest-index (lowest-id) link that is up;
/// when none is, it stays on its link while the peer is heard there, else moves to the lowest link the peer is
/// heard on; heard on none, it stays where it was. Until some link has been up it stays on the lowest link.
/// </summary>
/// <remarks>
/// Threads: the receiver thread calls <see cref="Heard"/> and <see cref="Reported"/>; the control tick calls
/// <see cref="Evaluate"/> (the only writer of up/carrying state); status readers get copies.
/// </remarks>
internal sealed class LinkHealth
{
    private readonly TimeProvider _time;
    private readonly long _deadMs;
    private readonly byte[] _linkIds;
    private readonly int _peers;
    private readonly long[] _heard;      // [peer * links + link]: timestamp of the last heartbeat sent on the link that arrived on it
    private readonly int[] _reported;    // [peer]: the links on which the peer last said it hears us (bitmap)
    private readonly bool[] _up;         // [peer * links + link]: as of the last Evaluate
    private readonly int[] _carrying;    // [peer]: link index carrying the peer's traffic
    private readonly long[] _switches;   // [peer]
    private readonly bool[] _seenUp;     // [peer]: some link has been up toward the peer (control tick)

    public LinkHealth(int peers, IReadOnlyList<byte> linkIds, TimeSpan deadInterval, TimeProvider time)
    {
        if (linkIds.Count is < 1 or > HeartbeatMessage.MaxLinks)
        {
            throw new ArgumentOutOfRangeException(nameof(linkIds), $"expected 1 to {HeartbeatMessage.MaxLinks} links, found {linkIds.Count}");
        }

        _time = time;
        _deadMs = (long)deadInterval.TotalMilliseconds;
        _linkIds = [.. linkIds];
        _peers = peers;
        _heard = new long[peers * _linkIds.Length];
        _reported = new int[peers];
        _up = new bool[peers * _linkIds.Length];
        _carrying = new int[peers];
        _switches = new long[peers];
        _seenUp = new bool[peers];
    }

    /// <summary>Called when a link goes up or down toward a peer (control tick): peer index, link index, up.</summary>
    public Action<int, int, bool>? LinkChanged { get; set; }

    /// <summary>Called when a peer's traffic moves to another link (control tick): peer index, from link index, to link index.</summary>
    public Action<int, int, int>? Switched { get; set; }

    public int LinkCount => _linkIds.Length;

    public byte LinkId(int link) => _linkIds[link];

    /// <summary>A heartbeat the peer sent on <paramref name="link"/> arrived on it (authenticated).</summary>
    public void Heard(int peer, int link, long timestamp) => Volatile.Write(ref _heard[(peer * _linkIds.Length) + link], timestamp);

    /// <summary>The peer's heartbeat says on which links it hears this member.</summary>
    public void Reported(int peer, byte heardLinks) => Volatile.Write(ref _reported[peer], heardLinks);

    /// <summary>The links on which this member heard <paramref name="peer"/> within the dead interval (carried in our heartbeats to it).</summary>
    public byte HeardMask(int peer, long now)
    {
        int mask = 0;
        for (int l = 0; l < _linkIds.Length; l++)
        {
            if (HeardRecently(peer, l, now))
            {
                mask |= 1 << l;
            }
        }

        return (byte)mask;
    }

    /// <summary>The link index that carries traffic toward <paramref name="peer"/>.</summary>
    public int Carrying(int peer) => Volatile.Read(ref _carrying[peer]);

    public long Switches(int peer) => Interlocked.Read(ref _switches[peer]);

    /// <summary>Re-judges every link and picks each peer's carrying link (control tick).</summary>
    public void Evaluate(long now)
    {
        for (int p = 0; p < _peers; p++)
        {
            int reported = Volatile.Read(ref _reported[p]);
            int firstUp = -1;
            int firstHeard = -1;
            for (int l = 0; l < _linkIds.Length; l++)
            {
                bool heard = HeardRecently(p, l, now);
                bool up = heard && (reported & (1 << l)) != 0;
                ref bool was = ref _up[(p * _linkIds.Length) + l];
                if (up != was)
                {
                    was = up;
                    LinkChanged?.Invoke(p, l, up);
                }

                if (up && firstUp < 0)
                {
                    firstUp = l;
                }

                if (heard && firstHeard < 0)
                {
                    firstHeard = l;
                }
            }

            // No link up both ways. At start-up (none ever was) stay on the lowest link until one is up: one-way
            // evidence then is only the order in which first heartbeats happened to arrive. Later (every link
            // failing): stay while the peer is still heard on the current link, else take the lowest link it is
            // heard on; heard on none: stay.
            int current = _carrying[p];
            _seenUp[p] |= firstUp >= 0;
            int target = firstUp >= 0 ? firstUp : !_seenUp[p] || HeardRecently(p, current, now) ? current : firstHeard;
            if (target >= 0 && target != current)
            {
                Volatile.Write(ref _carrying[p], target);
                Interlocked.Increment(ref _switches[p]);
                Switched?.Invoke(p, current, target);
            }
        }
    }

    /// <summary>A copy of every link's state toward <paramref name="peer"/>, in link order.</summary>
    public LinkStatus[] Status(int peer, long now)
    {
        var result = new LinkStatus[_linkIds.Length];
        int reported = Volatile.Read(ref _reported[peer]);
        int carrying = Carrying(peer);
        for (int l = 0; l < result.Length; l++)
        {
            long heard = Volatile.Read(ref _heard[(peer * _linkIds.Length) + l]);
            bool peerHears = (reported & (1 << l)) != 0;
            result[l] = new LinkStatus(_linkIds[l], HeardRecently(peer, l, now) && peerHears,
                heard == 0 ? null : ElapsedMs(heard, now), peerHears, l == carrying);
        }

        return result;
    }

    private bool HeardRecently(int peer, int link, long now)
    {
        long heard = Volatile.Read(ref _heard[(peer * _linkIds.Length) + link]);
        return heard != 0 && ElapsedMs(heard, now) <= _deadMs;
    }

    private long ElapsedMs(long from, long to) => (long)((to - from) * (1000.0 / _time.TimestampFrequency));
}
