using ClusterSync.Engine;

namespace ClusterSync.Node.DataPlanes;

/// <summary>What one member's <see cref="HeartbeatLog"/> holds (a copy, for <c>/failover/heard</c>).</summary>
/// <param name="MemberId">The member that heard.</param>
/// <param name="TickUnixMs">When its control ticks ran (Unix ms, its clock), oldest first: the log's own resolution.</param>
/// <param name="Peers">Per peer, when it was heard and when it was seen dead.</param>
public sealed record HeartbeatLogSnapshot(int MemberId, double[] TickUnixMs, IReadOnlyList<PeerHeardLog> Peers);

/// <param name="Peer">The peer's member id.</param>
/// <param name="HeardUnixMs">When this member last heard the peer (its last authenticated packet), each distinct time once, oldest first.</param>
/// <param name="DeadSeenUnixMs">The last 256 ticks at which the peer turned from live to not live (heard nothing for a dead interval).</param>
public sealed record PeerHeardLog(int Peer, double[] HeardUnixMs, double[] DeadSeenUnixMs);

/// <summary>
/// When this member heard each peer, as its own control tick saw it: at every tick (every <c>ackInterval</c>, 5 ms) the
/// engine's public peer status (<see cref="SyncEngine.GetPeerStatus"/>: the time since the last authenticated packet,
/// whatever kind) gives the time of the last packet, recorded when it changed, and a peer that stopped counting as live
/// is recorded as seen dead. <c>bench failover --data-plane conntrack</c> and its test read it to find the largest gap
/// the survivors saw in the promoting member's heartbeats while it committed (docs/conntrack.md, "Commit at 1M").
/// Read-only towards the engine (no Core state changes); bounded rings (the last <see cref="Capacity"/> entries each).
/// </summary>
/// <remarks>
/// The time since is whole milliseconds, so a time is exact to 1 ms, and two packets less than 1 ms apart are one entry
/// (which shortens no gap). A packet overwritten by the next before a tick read it is missed, so a gap in this log is the
/// true gap or longer by at most the spacing of the ticks around it (<see cref="HeartbeatLogSnapshot.TickUnixMs"/>):
/// the liveness check reads the same status on the same tick, so the log sees what it sees.
/// </remarks>
public sealed class HeartbeatLog
{
    /// <summary>Entries kept per ring: at 200 ticks/s, 80 s of ticks; heard times at the packet rate, longer.</summary>
    public const int Capacity = 16_384;

    private readonly SyncEngine _engine;
    private readonly TimeProvider _time;
    private readonly object _sync = new();
    private readonly Ring _ticks = new(Capacity);
    private readonly Dictionary<byte, (Ring Heard, Ring Dead, bool Live)> _peers = [];

    public HeartbeatLog(SyncEngine engine, TimeProvider time)
    {
        _engine = engine;
        _time = time;
    }

    /// <summary>Called on this member's control tick (by the <see cref="FailoverWitness"/>).</summary>
    public void Record()
    {
        var status = _engine.GetPeerStatus();
        double now = FailoverWitness.UnixMs(_time);
        lock (_sync)
        {
            _ticks.Add(now);
            foreach (var p in status)
            {
                if (!_peers.TryGetValue(p.MemberId, out var log))
                {
                    log = (new Ring(Capacity), new Ring(256), false);
                }

                if (p.LastHeardAgeMs is { } age)
                {
                    double heard = Math.Round(now - age, 1);
                    if (heard - log.Heard.Last >= 1)
                    {
                        log.Heard.Add(heard);
                    }
                }

                if (log.Live && !p.Live)
                {
                    log.Dead.Add(Math.Round(now, 1));
                }

                _peers[p.MemberId] = (log.Heard, log.Dead, p.Live);
            }
        }
    }

    public HeartbeatLogSnapshot Snapshot()
    {
        lock (_sync)
        {
            return new HeartbeatLogSnapshot(_engine.MemberId, _ticks.ToArray(),
                [.. _peers.OrderBy(kv => kv.Key).Select(kv => new PeerHeardLog(kv.Key, kv.Value.Heard.ToArray(), kv.Value.Dead.ToArray()))]);
        }
    }

    /// <summary>The last <c>capacity</c> values, in the order added.</summary>
    private sealed class Ring(int capacity)
    {
        private readonly double[] _values = new double[capacity];
        private long _count;

        public double Last => _count == 0 ? double.NegativeInfinity : _values[(_count - 1) % capacity];

        public void Add(double value) => _values[_count++ % capacity] = value;

        public double[] ToArray()
        {
            int n = (int)Math.Min(_count, capacity);
            var result = new double[n];
            long from = _count - n;
            for (int i = 0; i < n; i++)
            {
                result[i] = _values[(from + i) % capacity];
            }

            return result;
        }
    }
}
