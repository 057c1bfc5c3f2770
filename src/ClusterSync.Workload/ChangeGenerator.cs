using ClusterSync.Connections;

namespace ClusterSync.Workload;

/// <summary>
/// A seeded stream of connection changes over a bounded population of connections: new connections until the
/// population is reached, then a mix of updates, destroys and new ones. The same seed gives the same stream.
/// Keys are IPv4 (and a share of IPv6), spread over the primary ports of <see cref="ServiceMix.Default"/> so every
/// class of the default policy is exercised. Whole connections with lifetimes (traces) come from <see cref="Trace.TraceGenerator"/>.
/// <para>
/// With lifetimes (<see cref="WithLifetimes"/>), each new connection is drawn from a <see cref="ServiceMix"/>: its
/// service (by weight and hour of day), a port of that service, its direction (which side is inside the protected
/// network) and a lifetime from the service's heavy-tailed <see cref="LifetimeShape"/>; it is destroyed when that
/// lifetime has passed (by the <c>nowMs</c> the caller passes), and updated meanwhile. The lifetimes a run drew are
/// exactly the lifetimes of what was destroyed, so a caller can count offline what a static delay would have cost.
/// </para>
/// </summary>
public sealed class ChangeGenerator
{
    // The service mix is the one source of truth for services and their ports.
    private static readonly (byte Protocol, ushort Port)[] s_services = ServiceMix.Default.PrimaryPorts;

    private readonly Random _random;
    private readonly int _population;
    private readonly double _ipv6Share;
    private readonly ConnectionKey[] _live;
    private int _liveCount;
    private uint _next;
    private readonly uint _base;

    public ChangeGenerator(int seed, int population, double ipv6Share = 0.1, uint addressBase = 0x0A00_0000)
    {
        _random = new Random(seed);
        _population = population;
        _ipv6Share = ipv6Share;
        _live = new ConnectionKey[population];
        _base = addressBase;
    }

    // Lifetime mode (null otherwise): the mix, each live connection's slot in _live, and the destroy schedule.
    private readonly ServiceMix? _mix;
    private readonly Dictionary<ConnectionKey, int>? _slot;
    private readonly PriorityQueue<ConnectionKey, long>? _ends;
    private readonly double _newShare;

    private ChangeGenerator(int seed, int population, ServiceMix mix, double newShare, double ipv6Share, uint addressBase)
        : this(seed, population, ipv6Share, addressBase)
    {
        _mix = mix;
        _newShare = newShare;
        _slot = new Dictionary<ConnectionKey, int>(population);
        _ends = new PriorityQueue<ConnectionKey, long>(population);
    }

    /// <summary>
    /// A stream whose connections live as the services of <paramref name="mix"/> do (see the class remarks): at most
    /// <paramref name="population"/> alive; of the changes that are not a due destroy, <paramref name="newShare"/> open
    /// a connection and the rest update a live one.
    /// </summary>
    public static ChangeGenerator WithLifetimes(int seed, int population, ServiceMix mix, double newShare = 0.5, double ipv6Share = 0.1, uint addressBase = 0x0A00_0000)
    {
        ArgumentNullException.ThrowIfNull(mix);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(newShare, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(newShare, 1);
        return new ChangeGenerator(seed, population, mix, newShare, ipv6Share, addressBase);
    }

    /// <summary>Set in lifetime mode: called for every new connection with its service and drawn lifetime (seconds).</summary>
    public Action<ConnectionKey, ServiceProfile, double>? Opened { get; set; }

    public int LiveCount => _liveCount;

    /// <summary>
    /// When set, only connections it accepts are opened: the data plane of a load-sharing member sees only the
    /// connections the upstream switch hashes to it (see <c>Membership.Ownership</c>). Null: every connection.
    /// </summary>
    public Func<ConnectionKey, bool>? Accept { get; set; }

    /// <summary>Drops from the live set every connection <paramref name="keep"/> refuses (it moved to another member).</summary>
    public int Retain(Func<ConnectionKey, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        ThrowIfLifetimeMode();
        int kept = 0;
        for (int i = 0; i < _liveCount; i++)
        {
            if (keep(_live[i]))
            {
                _live[kept++] = _live[i];
            }
        }

        int dropped = _liveCount - kept;
        _liveCount = kept;
        return dropped;
    }

    /// <summary>Adds taken-over connections to the live set (up to the population size), so the stream drives them too.</summary>
    public int AddLive(IEnumerable<ConnectionKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ThrowIfLifetimeMode();
        var present = new HashSet<ConnectionKey>(_live.AsSpan(0, _liveCount).ToArray());
        int added = 0;
        foreach (var k in keys)
        {
            if (_liveCount == _population)
            {
                break;
            }

            if (present.Add(k))
            {
                _live[_liveCount++] = k;
                added++;
            }
        }

        return added;
    }

    /// <summary>
    /// Continues from a taken-over population: the live set becomes <paramref name="keys"/> (up to the population
    /// size), so the stream goes on updating and destroying those connections, and opening new ones.
    /// </summary>
    public void Adopt(IEnumerable<ConnectionKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ThrowIfLifetimeMode();
        _liveCount = 0;
        foreach (var k in keys)
        {
            if (_liveCount == _population)
            {
                break;
            }

            _live[_liveCount++] = k;
        }
    }

    /// <summary>
    /// Writes the next change into <paramref name="change"/>; <paramref name="nowMs"/> stamps creation. False when
    /// there was nothing to write: no live connection, and no new one <see cref="Accept"/> took within 64 candidates.
    /// </summary>
    public bool Next(ref ConnectionEvent change, long nowMs)
    {
        if (_mix is not null)
        {
            return NextWithLifetimes(ref change, nowMs);
        }

        double roll = _random.NextDouble();
        if (_liveCount < _population && (_liveCount < _population / 2 || roll < 0.3))
        {
            for (int attempt = 0; attempt < 64; attempt++)
            {
                var key = NewKey();
                if (Accept is null || Accept(key))
                {
                    _live[_liveCount++] = key;
                    Fill(ref change, ConnectionEventKind.New, key, ProtocolState.TcpSynSent, nowMs);
                    return true;
                }
            }
        }

        if (_liveCount == 0)
        {
            return false;
        }

        int i = _random.Next(_liveCount);
        var k = _live[i];
        if (roll < 0.85 || _liveCount == 1)
        {
            Fill(ref change, ConnectionEventKind.Update, k, ProtocolState.TcpEstablished, nowMs);
            change.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed;
            return true;
        }

        _live[i] = _live[--_liveCount];
        Fill(ref change, ConnectionEventKind.Destroy, k, ProtocolState.TcpClose, nowMs);
        return true;
    }

    private void ThrowIfLifetimeMode()
    {
        if (_mix is not null)
        {
            throw new InvalidOperationException("A generator with lifetimes schedules its own destroys; it cannot adopt or drop connections.");
        }
    }

    private bool NextWithLifetimes(ref ConnectionEvent change, long nowMs)
    {
        if (_ends!.TryPeek(out var due, out long endMs) && endMs <= nowMs)
        {
            _ends.Dequeue();
            RemoveLive(due);
            Fill(ref change, ConnectionEventKind.Destroy, due, ProtocolState.TcpClose, nowMs);
            return true;
        }

        if (_liveCount < _population && (_liveCount == 0 || _random.NextDouble() < _newShare))
        {
            double hour = (nowMs / 3_600_000.0) % 24.0;
            for (int attempt = 0; attempt < 64; attempt++)
            {
                var service = _mix!.Pick(_random, hour);
                var key = ServiceKey(service);
                if (_slot!.ContainsKey(key) || (Accept is not null && !Accept(key)))
                {
                    continue;
                }

                double lifetime = service.Lifetime.Sample(_random);
                _slot[key] = _liveCount;
                _live[_liveCount++] = key;
                _ends.Enqueue(key, nowMs + Math.Max(1, (long)Math.Round(lifetime * 1000)));
                Opened?.Invoke(key, service, lifetime);
                Fill(ref change, ConnectionEventKind.New, key, ProtocolState.TcpSynSent, nowMs);
                return true;
            }
        }

        if (_liveCount == 0)
        {
            return false;
        }

        var k = _live[_random.Next(_liveCount)];
        Fill(ref change, ConnectionEventKind.Update, k, ProtocolState.TcpEstablished, nowMs);
        change.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed;
        return true;
    }

    private void RemoveLive(in ConnectionKey key)
    {
        if (_slot!.Remove(key, out int i))
        {
            var last = _live[--_liveCount];
            if (i != _liveCount)
            {
                _live[i] = last;
                _slot[last] = i;
            }
        }
    }

    // A key for one connection of a service: its protocol and one of its ports (random for scanners); the inside
    // (10.x / 192.168.x, fd00::/8) and outside (198.18/15, 2001:db8::/32) sides as its direction says.
    private ConnectionKey ServiceKey(ServiceProfile service)
    {
        uint n = _next++;
        ushort port = service.RandomPorts ? (ushort)_random.Next(1, 65536) : service.Ports[_random.Next(service.Ports.Length)];
        ushort sport = (ushort)(1024 + (n % 60000));
        bool srcInside = service.Direction != ServiceDirection.Inbound;
        bool dstInside = service.Direction != ServiceDirection.Outbound;
        if (_random.NextDouble() < _ipv6Share)
        {
            ulong srcHigh = srcInside ? 0xFD00_0000_0000_0000UL | _base : 0x2001_0DB8_0000_0000UL | _base;
            ulong dstHigh = dstInside ? 0xFD00_0000_0000_0001UL : 0x2001_0DB8_0000_0001UL;
            return ConnectionKey.IPv6(srcHigh, n, dstHigh, n % 97, sport, port, service.Protocol);
        }

        uint src = srcInside ? _base + (n / 60000) : 0xC612_0000u + (_base >> 16) + (n / 60000); // 198.18.0.0/15
        uint dst = dstInside ? 0xC0A8_0001 + (n % 251) : 0xC613_0001u + (n % 251);               // 192.168.0.x / 198.19.0.x
        return ConnectionKey.IPv4(src, dst, sport, port, service.Protocol);
    }

    private ConnectionKey NewKey()
    {
        uint n = _next++;
        var (proto, port) = s_services[n % (uint)s_services.Length];
        ushort sport = (ushort)(1024 + (n % 60000));
        if (_random.NextDouble() < _ipv6Share)
        {
            return ConnectionKey.IPv6(0xFD00_0000_0000_0000UL | _base, n, 0xFD00_0000_0000_0001UL, n % 97, sport, port, proto);
        }

        return ConnectionKey.IPv4(_base + (n / 60000), 0xC0A8_0001 + (n % 251), sport, port, proto);
    }

    private static void Fill(ref ConnectionEvent change, ConnectionEventKind kind, in ConnectionKey key, ProtocolState state, long nowMs)
    {
        change = default;
        change.Kind = kind;
        change.Key = key;
        change.Entry.Reply = key.InverseTuple;
        change.Entry.State = key.Protocol == 6 ? state : key.Protocol == 17 ? ProtocolState.UdpReplied : ProtocolState.OtherActive;
        change.Entry.TimeoutSeconds = key.Protocol == 6 ? 432000u : 180u;
        change.Entry.CreatedMs = nowMs;
    }
}
