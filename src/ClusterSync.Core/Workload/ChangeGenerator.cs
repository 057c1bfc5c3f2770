using ClusterSync.Connections;

namespace ClusterSync.Workload;

/// <summary>
/// A seeded stream of connection changes over a bounded population of connections: new connections until the
/// population is reached, then a mix of updates, destroys and new ones. The same seed gives the same stream.
/// Keys are IPv4 (and a share of IPv6), spread over the primary ports of <see cref="ServiceMix.Default"/> so every
/// class of the default policy is exercised. Whole connections with lifetimes (traces) come from <see cref="Trace.TraceGenerator"/>.
/// </summary>
internal sealed class ChangeGenerator
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

    public int LiveCount => _liveCount;

    /// <summary>
    /// Continues from a taken-over population: the live set becomes <paramref name="keys"/> (up to the population
    /// size), so the stream goes on updating and destroying those connections, and opening new ones.
    /// </summary>
    public void Adopt(IEnumerable<ConnectionKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
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

    /// <summary>Writes the next change into <paramref name="change"/>; <paramref name="nowMs"/> stamps creation.</summary>
    public void Next(ref ConnectionEvent change, long nowMs)
    {
        double roll = _random.NextDouble();
        if (_liveCount < _population && (_liveCount < _population / 2 || roll < 0.3))
        {
            var key = NewKey();
            _live[_liveCount++] = key;
            Fill(ref change, ConnectionEventKind.New, key, ProtocolState.TcpSynSent, nowMs);
            return;
        }

        int i = _random.Next(_liveCount);
        var k = _live[i];
        if (roll < 0.85 || _liveCount == 1)
        {
            Fill(ref change, ConnectionEventKind.Update, k, ProtocolState.TcpEstablished, nowMs);
            change.Entry.Status = ConnectionStatus.SeenReply | ConnectionStatus.Assured | ConnectionStatus.Confirmed;
            return;
        }

        _live[i] = _live[--_liveCount];
        Fill(ref change, ConnectionEventKind.Destroy, k, ProtocolState.TcpClose, nowMs);
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
