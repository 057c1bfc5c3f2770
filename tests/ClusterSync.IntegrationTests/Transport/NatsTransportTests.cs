using System.Runtime.Loader;
using NATS.Client.Core;

namespace ClusterSync.IntegrationTests.Transport;

/// <summary>The NATS transport plugin on its own: loaded from its built assembly, against a real nats-server.</summary>
public sealed class NatsTransportTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(20);

    private TestTransport.NatsTestTransport Nats() => (TestTransport.NatsTestTransport)TestTransport.Create(TestTransport.NatsName, nats);

    [Fact]
    public void Load_BuiltPluginAssembly_FactoryNamedNatsInItsOwnLoadContext()
    {
        var factory = NatsPlugin.Factory;
        Assert.Equal("nats", factory.Name);
        Assert.IsAssignableFrom<IStreamTransportFactory>(factory);
        var assembly = factory.GetType().Assembly;
        Assert.Equal(Path.GetFullPath(NatsPlugin.AssemblyPath), assembly.Location);
        Assert.NotSame(AssemblyLoadContext.Default, AssemblyLoadContext.GetLoadContext(assembly));
        // The contracts are shared with the host, not loaded twice.
        Assert.Same(typeof(ISyncTransportFactory).Assembly, factory.GetType().GetInterfaces().Single(i => i.Name == nameof(ISyncTransportFactory)).Assembly);
    }

    [Fact]
    public void CreateDatagramChannel_BadAddresses_ArgumentExceptionNamesEveryField()
    {
        var ex = Assert.Throws<ArgumentException>(() => NatsPlugin.Factory.CreateDatagramChannel(
            new TransportEndpoints("127.0.0.1:8116", ["cs.site.m2", "cs.*.m3", "cs.site.m2"]), 1500));
        Assert.Contains("transport.local: expected 'nats://host:port/<subject root>'", ex.Message);
        Assert.Contains("transport.peers[1]:", ex.Message);
        Assert.Contains("no wildcards", ex.Message);
        Assert.Contains("transport.peers[2]:", ex.Message);
    }

    [Fact]
    public void CreateDatagramChannel_NoServerListening_IOExceptionNamesTheServer()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var ex = Assert.Throws<IOException>(() => NatsPlugin.Factory.CreateDatagramChannel(
            new TransportEndpoints($"nats://127.0.0.1:{port}/cs.site.m1", ["cs.site.m2"]), 1500));
        Assert.Contains($"nats://127.0.0.1:{port}", ex.Message);
    }

    [SkippableFact]
    public async Task SendAsync_ToEachPeer_ArrivesOnceWithTheSendersPeerIndex()
    {
        var transport = Nats();
        using var channels = transport.CreateChannels(3);
        Assert.All(channels, c => Assert.Equal(2, c.PeerCount));
        Assert.All(channels, c => Assert.Equal(1500, c.MaxDatagramSize));
        // m1's peers are [m2, m3]; m3's peers are [m1, m2]: m1 → m3 is peer index 1 at the sender, 0 at the receiver.
        await channels[0].SendAsync(new byte[] { 1, 3 }, 1);
        await channels[1].SendAsync(new byte[] { 2, 3, 9 }, 1);
        var buffer = new byte[1500];
        var seen = new List<(int Peer, byte From)>();
        using var cts = new CancellationTokenSource(s_timeout);
        for (int i = 0; i < 2; i++)
        {
            var r = await channels[2].ReceiveAsync(buffer, cts.Token);
            seen.Add((r.PeerIndex, buffer[0]));
            Assert.Equal(buffer[0] == 1 ? 2 : 3, r.Length);
        }

        Assert.Equal([(0, (byte)1), (1, (byte)2)], seen.OrderBy(s => s.Peer));
        // Nothing else arrived anywhere (m2 got nothing).
        using var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await channels[1].ReceiveAsync(buffer, quiet.Token));
    }

    [SkippableFact]
    public async Task Stream_EightMegabytesEachWay_ArriveInOrderAndCloseEndsThePeersRead()
    {
        var transport = Nats();
        using var channels = transport.CreateStreamChannels(2);
        var accept = channels[1].AcceptAsync().AsTask();
        await using var client = await channels[0].ConnectAsync(0).AsTask().WaitAsync(s_timeout);
        await using var server = await accept.WaitAsync(s_timeout);
        var up = RandomNumberGenerator.GetBytes(8 << 20);
        var down = RandomNumberGenerator.GetBytes(8 << 20);

        // Both directions at once, in uneven pieces: more than the 4 MiB flow-control window each way.
        var writes = Task.WhenAll(WriteInPiecesAsync(client, up), WriteInPiecesAsync(server, down));
        var atServer = ReadExactlyAsync(server, up.Length);
        var atClient = ReadExactlyAsync(client, down.Length);
        await writes.WaitAsync(s_timeout);
        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await atServer.WaitAsync(s_timeout)));
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await atClient.WaitAsync(s_timeout)));

        // Closing one end (Fin) ends the other end's read.
        await client.DisposeAsync();
        Assert.Equal(0, await server.ReadAsync(new byte[16]).AsTask().WaitAsync(s_timeout));
    }

    [SkippableFact]
    public async Task ConnectAsync_OpenerNotAConfiguredPeer_RefusedWithReason()
    {
        var transport = Nats();
        using var members = transport.CreateStreamChannels(2);
        // An outsider that names member 1 as its peer, while member 1 does not know it.
        var outsider = NatsPlugin.StreamFactory.CreateStreamChannel(new TransportEndpoints(
            $"{transport.Url}/cs.outsider.m9", [transport.Endpoints(0, 2).LocalAddress]));
        try
        {
            var ex = await Assert.ThrowsAsync<IOException>(async () => await outsider.ConnectAsync(0).AsTask().WaitAsync(s_timeout));
            Assert.Contains("refused", ex.Message);
        }
        finally
        {
            ((IDisposable)outsider).Dispose();
        }
    }

    [SkippableFact]
    public async Task Stream_DataMessageMissing_ReadFailsWithIOExceptionAfterTheBytesBeforeTheGap()
    {
        var transport = Nats();
        using var channels = transport.CreateStreamChannels(2);
        // A raw NATS client watches the acceptor's stream subjects and then plays a message that skips ahead.
        await using var raw = new NatsConnection(NatsOpts.Default with { Url = transport.Url });
        await raw.ConnectAsync();
        string acceptorRoot = transport.Endpoints(1, 2).LocalAddress[(transport.Url.Length + 1)..];
        await using var watch = await raw.SubscribeCoreAsync<byte[]>($"{acceptorRoot}.s.*");
        await raw.PingAsync();
        var accept = channels[1].AcceptAsync().AsTask();
        await using var client = await channels[0].ConnectAsync(0).AsTask().WaitAsync(s_timeout);
        await using var server = await accept.WaitAsync(s_timeout);
        await client.WriteAsync(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 });
        using var cts = new CancellationTokenSource(s_timeout);
        var seen = await watch.Msgs.ReadAsync(cts.Token);
        while (seen.Subject.EndsWith(".open", StringComparison.Ordinal))
        {
            seen = await watch.Msgs.ReadAsync(cts.Token);
        }

        Assert.Equal(9 + 10, seen.Data!.Length);

        // Offset 20 where 10 is expected: as if a message had been dropped on the way.
        var skipped = new byte[9 + 4];
        skipped[0] = 1;
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(skipped.AsSpan(1), 20);
        await raw.PublishAsync(seen.Subject, skipped);

        var buffer = new byte[64];
        Assert.Equal(10, await server.ReadAsync(buffer).AsTask().WaitAsync(s_timeout));
        var ex = await Assert.ThrowsAsync<IOException>(async () => await server.ReadAsync(buffer).AsTask().WaitAsync(s_timeout));
        Assert.Contains("gap: expected offset 10, got 20", ex.Message);
    }

    private static async Task WriteInPiecesAsync(Stream stream, byte[] data)
    {
        var rng = new Random(5);
        for (int pos = 0; pos < data.Length;)
        {
            int n = Math.Min(data.Length - pos, rng.Next(1, 200_000));
            await stream.WriteAsync(data.AsMemory(pos, n));
            pos += n;
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int length)
    {
        var all = new byte[length];
        for (int pos = 0; pos < length;)
        {
            int n = await stream.ReadAsync(all.AsMemory(pos, Math.Min(37_000, length - pos)));
            Assert.True(n > 0, $"the stream ended after {pos} of {length} bytes");
            pos += n;
        }

        return all;
    }
}
