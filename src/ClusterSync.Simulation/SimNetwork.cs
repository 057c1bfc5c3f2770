using ClusterSync.Transport;

namespace ClusterSync.Simulation;

/// <summary>What one direction of a link does to datagrams now (the fault schedule changes it; healing resets it).</summary>
internal sealed class LinkFaults
{
    public double Loss;
    public double Duplicate;
    public double Reorder;
    /// <summary>Extra delay, uniform in [0, Jitter), on top of the base delay; a reordered datagram waits up to 4x more.</summary>
    public TimeSpan Jitter;
    /// <summary>Nothing passes (a partition, one direction).</summary>
    public bool Cut;

    /// <summary>When this link last dropped a datagram (a cut or loss), in world ticks; <see cref="long.MinValue"/> if never. Healing keeps it.</summary>
    public long LastDropTicks = long.MinValue;

    public void Heal()
    {
        Loss = 0;
        Duplicate = 0;
        Reorder = 0;
        Jitter = TimeSpan.Zero;
        Cut = false;
    }
}

/// <summary>
/// The simulated sync network between members 1..N: every datagram is copied, then dropped, duplicated, delayed and
/// reordered according to its link's <see cref="LinkFaults"/>, with the world's random source; delivery is an event
/// that hands the bytes to whatever incarnation of the destination member is up at that instant.
/// </summary>
internal sealed class SimNetwork
{
    public static readonly TimeSpan BaseDelay = TimeSpan.FromMicroseconds(200);
    private readonly SimWorld _world;
    private readonly LinkFaults[,] _links;
    private readonly Action<byte, byte[]> _deliver;

    public SimNetwork(SimWorld world, int members, Action<byte, byte[]> deliver)
    {
        _world = world;
        Members = members;
        _deliver = deliver;
        _links = new LinkFaults[members + 1, members + 1];
        for (int i = 0; i <= members; i++)
        {
            for (int j = 0; j <= members; j++)
            {
                _links[i, j] = new LinkFaults();
            }
        }
    }

    public int Members { get; }

    public long Sent { get; private set; }

    public long Dropped { get; private set; }

    public long Duplicated { get; private set; }

    public LinkFaults Link(byte from, byte to) => _links[from, to];

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> reach each other both ways (a TCP connection could be made).</summary>
    public bool Connected(byte a, byte b) => !_links[a, b].Cut && !_links[b, a].Cut;

    /// <summary>True when nothing is lost between <paramref name="a"/> and <paramref name="b"/> (no cut, no loss, either way).</summary>
    public bool Clean(byte a, byte b) => Connected(a, b) && _links[a, b].Loss == 0 && _links[b, a].Loss == 0;

    /// <summary>
    /// Clean now, and neither direction dropped a datagram since <paramref name="sinceTicks"/>: every heartbeat either
    /// member sent the other in that window arrived.
    /// </summary>
    public bool CleanSince(byte a, byte b, long sinceTicks)
        => Clean(a, b) && _links[a, b].LastDropTicks < sinceTicks && _links[b, a].LastDropTicks < sinceTicks;

    public void HealAll()
    {
        foreach (var l in _links)
        {
            l.Heal();
        }
    }

    public void Send(byte from, byte to, ReadOnlySpan<byte> datagram)
    {
        var random = _world.Random;
        var link = _links[from, to];
        Sent++;
        if (link.Cut || (link.Loss > 0 && random.NextDouble() < link.Loss))
        {
            Dropped++;
            link.LastDropTicks = _world.Now;
            return;
        }

        int copies = link.Duplicate > 0 && random.NextDouble() < link.Duplicate ? 2 : 1;
        if (copies == 2)
        {
            Duplicated++;
        }

        var bytes = datagram.ToArray();
        for (int c = 0; c < copies; c++)
        {
            long delay = BaseDelay.Ticks;
            if (link.Jitter > TimeSpan.Zero)
            {
                delay += (long)(random.NextDouble() * link.Jitter.Ticks);
            }

            if (link.Reorder > 0 && random.NextDouble() < link.Reorder)
            {
                delay += (long)(random.NextDouble() * 4 * Math.Max(link.Jitter.Ticks, TimeSpan.TicksPerMillisecond));
            }

            _world.Schedule(TimeSpan.FromTicks(delay), () => _deliver(to, bytes));
        }
    }
}

/// <summary>One incarnation's delta-sync channel on the simulated network. Nothing is received through it: the simulation hands datagrams to the stepped engine.</summary>
internal sealed class SimDatagramChannel(SimNetwork network, byte self, IReadOnlyList<byte> peers, int mtu) : IDatagramChannel
{
    private bool _closed;

    public int MaxDatagramSize => mtu;

    public int PeerCount => peers.Count;

    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, int peerIndex, CancellationToken cancellationToken = default)
    {
        if (!_closed)
        {
            network.Send(self, peers[peerIndex], datagram.Span);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<DatagramReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("A stepped engine does not receive through its channel.");

    public void Dispose() => _closed = true;
}
