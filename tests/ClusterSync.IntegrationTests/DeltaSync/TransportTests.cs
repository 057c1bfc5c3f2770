namespace ClusterSync.IntegrationTests.DeltaSync;

public sealed class TransportTests
{
    [Fact]
    public async Task UdpChannel_SendToPeer_ReceivedWithPeerIndex()
    {
        using var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var b = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        a.SetPeers([b.LocalEndPoint]);
        b.SetPeers([a.LocalEndPoint]);
        var payload = Enumerable.Range(0, 1400).Select(i => (byte)i).ToArray();
        await a.SendAsync(payload, 0);
        var buffer = new byte[1500];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var result = await b.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal(1400, result.Length);
        Assert.Equal(0, result.PeerIndex);
        Assert.Equal(payload, buffer[..1400]);
    }

    [Fact]
    public async Task UdpChannel_DatagramFromStranger_PeerIndexUnknown()
    {
        using var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var stranger = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        stranger.SetPeers([a.LocalEndPoint]);
        await stranger.SendAsync(new byte[] { 1, 2, 3 }, 0);
        var buffer = new byte[1500];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var result = await a.ReceiveAsync(buffer, timeout.Token);
        Assert.Equal(3, result.Length);
        Assert.Equal(-1, result.PeerIndex);
    }

    [Fact]
    public async Task UdpChannel_Dispose_EndsBlockedReceive()
    {
        var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        var receive = Task.Run(async () => await a.ReceiveAsync(new byte[1500]));
        await Task.Delay(50);
        a.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task TcpStreamChannel_ConnectAndAccept_CarryBytesBothWays()
    {
        using var server = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), []);
        using var client = new TcpStreamChannel(new IPEndPoint(IPAddress.Loopback, 0), [server.LocalEndPoint]);
        var accept = server.AcceptAsync().AsTask();
        await using var outbound = await client.ConnectAsync(0);
        await using var inbound = await accept.WaitAsync(TimeSpan.FromSeconds(10));
        await outbound.WriteAsync("hello"u8.ToArray());
        var buffer = new byte[5];
        await inbound.ReadExactlyAsync(buffer);
        Assert.Equal("hello"u8.ToArray(), buffer);
        await inbound.WriteAsync("world"u8.ToArray());
        await outbound.ReadExactlyAsync(buffer);
        Assert.Equal("world"u8.ToArray(), buffer);
    }

    [Theory]
    [InlineData("10.0.0.1:8116", true)]
    [InlineData("[fd00::1]:9000", true)]
    [InlineData("10.0.0.1", true)]
    [InlineData("not-an-address:1", false)]
    [InlineData("10.0.0.1:70000", false)]
    public void TryParseEndPoint_Forms_AcceptedOrExplained(string text, bool ok)
    {
        Assert.Equal(ok, UdpDatagramChannel.TryParseEndPoint(text, out var ep, out var error));
        if (ok)
        {
            Assert.True(ep.Port > 0);
        }
        else
        {
            Assert.Contains(text, error, StringComparison.Ordinal);
        }
    }
}
