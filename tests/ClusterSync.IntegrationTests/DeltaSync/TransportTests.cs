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
        int thread = 0;
        var receive = Task.Factory.StartNew(() =>
        {
            Volatile.Write(ref thread, ReceivingThread.Id());
            return a.ReceiveAsync(new byte[1500]).AsTask();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        // The receive must be blocked in the kernel when the channel is disposed (not yet begun is another path).
        await Wait.WaitUntilAsync(() => Volatile.Read(ref thread) != 0 && ReceivingThread.InReceiveCall(Volatile.Read(ref thread)),
            "the receiving thread blocked in a receive system call", TimeSpan.FromSeconds(10));
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

/// <summary>Whether a thread of this process is blocked in a receive system call (Linux: <c>/proc/self/task/ID/syscall</c>).</summary>
internal static class ReceivingThread
{
    /// <summary>The calling thread's kernel id (from <c>/proc/thread-self</c>, a link to <c>PID/task/TID</c>); -1 off Linux.</summary>
    public static int Id()
        => OperatingSystem.IsLinux() && new FileInfo("/proc/thread-self").LinkTarget is { } target
            ? int.Parse(target[(target.LastIndexOf('/') + 1)..], CultureInfo.InvariantCulture)
            : -1;

    /// <summary>True while thread <paramref name="id"/> is inside recvfrom, recvmsg or recvmmsg (always true off Linux: nothing to look at).</summary>
    public static bool InReceiveCall(int id)
    {
        if (id < 0)
        {
            return true;
        }

        // "NR arg1 ... sp pc" while in a system call, "running" (or "-1 ...") otherwise.
        var call = File.ReadAllText($"/proc/self/task/{id}/syscall").Split(' ')[0];
        int[] receives = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? [207, 212, 243] // recvfrom, recvmsg, recvmmsg (asm-generic)
            : [45, 47, 299]; // x86_64
        return int.TryParse(call, NumberStyles.Integer, CultureInfo.InvariantCulture, out var nr) && receives.Contains(nr);
    }
}
