namespace ClusterSync.IntegrationTests.Transport;

/// <summary>The transport a test cluster's members use: the built-in UDP one, or the NATS plugin through a real nats-server.</summary>
internal abstract class TestTransport
{
    public const string UdpName = "udp";
    public const string NatsName = "nats";

    public abstract string Name { get; }

    /// <summary>One datagram channel per member, each knowing the others as peers in member order (self left out).</summary>
    public abstract ChannelSet<IDatagramChannel> CreateChannels(int members);

    public override string ToString() => Name;

    /// <summary>The named transport; skips the calling test (with the fixture's reason) when NATS is asked for but absent.</summary>
    public static TestTransport Create(string name, NatsServerFixture nats)
    {
        if (name == NatsName)
        {
            Skip.If(nats.Url is null, nats.SkipReason);
            return new NatsTestTransport(nats.Url!);
        }

        return new UdpTestTransport();
    }

    private sealed class UdpTestTransport : TestTransport
    {
        public override string Name => UdpName;

        public override ChannelSet<IDatagramChannel> CreateChannels(int members)
        {
            var sockets = Enumerable.Range(0, members).Select(_ => new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500)).ToList();
            for (int i = 0; i < members; i++)
            {
                sockets[i].SetPeers(Enumerable.Range(0, members).Where(j => j != i).Select(j => sockets[j].LocalEndPoint).ToList());
            }

            return new(sockets);
        }
    }

    /// <summary>Members are subject roots <c>cs.&lt;random cluster&gt;.m&lt;n&gt;</c>, so tests sharing a server never hear each other.</summary>
    internal sealed class NatsTestTransport(string url) : TestTransport
    {
        private readonly string _cluster = "cs." + Guid.NewGuid().ToString("N")[..12];

        public override string Name => NatsName;

        public string Url => url;

        public TransportEndpoints Endpoints(int member, int members)
            => new($"{url}/{_cluster}.m{member + 1}", Enumerable.Range(0, members).Where(j => j != member).Select(j => $"{_cluster}.m{j + 1}").ToList());

        public override ChannelSet<IDatagramChannel> CreateChannels(int members)
            => new(Enumerable.Range(0, members).Select(i => NatsPlugin.Factory.CreateDatagramChannel(Endpoints(i, members), 1500)));

        public ChannelSet<IStreamChannel> CreateStreamChannels(int members)
            => new(Enumerable.Range(0, members).Select(i => NatsPlugin.StreamFactory.CreateStreamChannel(Endpoints(i, members))));
    }
}

/// <summary>The channels of a test's members, in member order, disposed together (a test that hands them to engines lets the engines dispose them).</summary>
internal sealed class ChannelSet<T>(IEnumerable<T> channels) : IReadOnlyList<T>, IDisposable
    where T : class
{
    private readonly List<T> _channels = channels.ToList();

    public int Count => _channels.Count;

    public T this[int index] => _channels[index];

    public IEnumerator<T> GetEnumerator() => _channels.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var channel in _channels)
        {
            (channel as IDisposable)?.Dispose();
        }
    }
}
