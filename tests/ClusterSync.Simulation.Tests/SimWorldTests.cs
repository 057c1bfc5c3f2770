namespace ClusterSync.Simulation.Tests;

public sealed class SimWorldTests
{
    [Fact]
    public void RunUntil_EventsAtTheSameInstant_RunInScheduleOrder()
    {
        var world = new SimWorld(1);
        var order = new List<int>();
        world.Schedule(TimeSpan.FromMilliseconds(5), () => order.Add(1));
        world.Schedule(TimeSpan.FromMilliseconds(1), () => order.Add(0));
        world.Schedule(TimeSpan.FromMilliseconds(5), () => order.Add(2));

        world.RunUntil(SimWorld.StartTicks + TimeSpan.FromMilliseconds(10).Ticks);

        Assert.Equal([0, 1, 2], order);
        Assert.Equal(SimWorld.StartTicks + TimeSpan.FromMilliseconds(10).Ticks, world.Now);
    }

    [Fact]
    public void CreateTimer_PeriodicAndDisposed_FiresOnTheSimulatedClockOnly()
    {
        var world = new SimWorld(1);
        var clock = new MemberClock(world);
        int fired = 0;
        var timer = clock.CreateTimer(_ => fired++, null, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(10));

        world.RunUntil(world.Now + TimeSpan.FromMilliseconds(35).Ticks);
        timer.Dispose();
        world.RunUntil(world.Now + TimeSpan.FromMilliseconds(100).Ticks);

        Assert.Equal(3, fired);
    }

    [Fact]
    public void CancellationTokenSource_OnMemberClock_CancelsWhenSimulatedTimePasses()
    {
        var world = new SimWorld(1);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10), new MemberClock(world));

        world.RunUntil(world.Now + TimeSpan.FromSeconds(9).Ticks);
        bool before = cts.IsCancellationRequested;
        world.RunUntil(world.Now + TimeSpan.FromSeconds(2).Ticks);

        Assert.False(before);
        Assert.True(cts.IsCancellationRequested);
    }

    [Fact]
    public void MemberClock_WallOffset_MovesWallClockNotTimestamps()
    {
        var world = new SimWorld(1);
        var clock = new MemberClock(world);
        long before = clock.GetTimestamp();
        var wall = clock.GetUtcNow();

        clock.WallOffset = TimeSpan.FromSeconds(-30);

        Assert.Equal(before, clock.GetTimestamp());
        Assert.Equal(wall - TimeSpan.FromSeconds(30), clock.GetUtcNow());
    }
}

public sealed class SimNetworkTests
{
    [Fact]
    public void Send_CleanLink_DeliversOnceAfterTheBaseDelay()
    {
        var world = new SimWorld(1);
        var got = new List<(byte To, byte[] Bytes, long At)>();
        var net = new SimNetwork(world, 2, (to, b) => got.Add((to, b, world.Now)));

        net.Send(1, 2, [1, 2, 3]);
        world.RunUntil(world.Now + TimeSpan.FromMilliseconds(10).Ticks);

        var d = Assert.Single(got);
        Assert.Equal(2, d.To);
        Assert.Equal([1, 2, 3], d.Bytes);
        Assert.Equal(SimWorld.StartTicks + SimNetwork.BaseDelay.Ticks, d.At);
    }

    [Fact]
    public void Send_CutLink_DropsEverythingOneWayOnly()
    {
        var world = new SimWorld(1);
        var got = new List<byte>();
        var net = new SimNetwork(world, 2, (to, _) => got.Add(to));
        net.Link(1, 2).Cut = true;

        net.Send(1, 2, [0]);
        net.Send(2, 1, [0]);
        world.RunUntil(world.Now + TimeSpan.FromMilliseconds(10).Ticks);

        Assert.Equal([1], got);
        Assert.False(net.Connected(1, 2));
        Assert.Equal(1, net.Dropped);
    }

    [Fact]
    public void Send_LossySameSeed_SameDeliveries()
    {
        static List<long> Deliveries(int seed)
        {
            var world = new SimWorld(seed);
            var at = new List<long>();
            var net = new SimNetwork(world, 2, (_, _) => at.Add(world.Now));
            var link = net.Link(1, 2);
            link.Loss = 0.3;
            link.Duplicate = 0.2;
            link.Reorder = 0.3;
            link.Jitter = TimeSpan.FromMilliseconds(5);
            for (int i = 0; i < 200; i++)
            {
                net.Send(1, 2, [(byte)i]);
            }

            world.RunUntil(world.Now + TimeSpan.FromSeconds(1).Ticks);
            return at;
        }

        var a = Deliveries(7);

        Assert.Equal(a, Deliveries(7));
        Assert.NotEqual(a, Deliveries(8));
        Assert.InRange(a.Count, 100, 199);
    }
}

public sealed class SimStreamTests
{
    [Fact]
    public async Task Write_PastBudget_ThrowsAndReaderSeesTheCutPrefixThenEnd()
    {
        var (client, server) = SimDuplexStream.CreatePair(serverToClientBudget: 5);

        var ex = await Record.ExceptionAsync(() => server.WriteAsync(new byte[] { 1, 2, 3, 4, 5, 6, 7 }).AsTask());
        var buffer = new byte[16];
        int n = await client.ReadAtLeastAsync(buffer, 16, throwOnEndOfStream: false);

        Assert.IsType<IOException>(ex);
        Assert.Equal(5, n);
        Assert.Equal([1, 2, 3, 4, 5], buffer[..5]);
    }

    [Fact]
    public async Task Dispose_OneEnd_OtherEndReadsEndOfStream()
    {
        var (client, server) = SimDuplexStream.CreatePair(long.MaxValue);
        var read = server.ReadAsync(new byte[1]).AsTask();

        await client.DisposeAsync();

        Assert.Equal(0, await read.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
