namespace ClusterSync.Core.Tests.Engine;

public class SyncEngineConfigurationTests
{
    private static SyncEngineOptions Good() => EngineKit.Options();

    [Fact]
    public void Validate_GoodOptions_NoErrors()
    {
        Assert.Empty(Good().Validate("sync"));
        Assert.Empty(new SyncEngineOptions { MemberId = 1 }.Validate("sync"));
    }

    [Fact]
    public void Validate_EachBadField_ReportedWithPath()
    {
        var bad = Good() with
        {
            MemberId = 0,
            PeerMemberIds = [2, 2, 0],
            Mtu = 100,
            ResendBufferDatagrams = 10,
            SendWindowDatagrams = 8,
            AckInterval = TimeSpan.Zero,
            HeartbeatInterval = TimeSpan.FromSeconds(11),
            DeadAfterMissedHeartbeats = 1,
            TableCapacity = 8,
            MaxBatchDelay = TimeSpan.FromSeconds(2),
            Policy = new PolicyOptions { DefaultClass = "nope" },
        };

        var prefixes = bad.Validate("sync").Select(e => e[..e.IndexOf(':', StringComparison.Ordinal)]).ToList();

        Assert.Equal(
            [
                "sync.memberId", "sync.peers[1].memberId", "sync.peers[2].memberId", "sync.mtu", "sync.resendBufferDatagrams",
                "sync.sendWindowDatagrams", "sync.ackEveryDatagrams", "sync.ackInterval", "sync.heartbeatInterval", "sync.deadAfterMissedHeartbeats",
                "sync.tableCapacity", "sync.maxBatchDelay", "sync.policy.defaultClass",
            ],
            prefixes);
    }

    [Fact]
    public void Validate_PeerEqualToSelf_Reported()
    {
        var errors = (Good() with { PeerMemberIds = [1] }).Validate("sync").ToList();

        Assert.StartsWith("sync.peers[0].memberId:", Assert.Single(errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_NoKeyAndNotInsecure_Throws()
    {
        var ex = Assert.Throws<ConfigurationException>(() => new SyncEngine(Good(), new CaptureChannel(1), null, new FakeTimeProvider()));

        Assert.Contains(ex.Errors, e => e.StartsWith("sync.keyFile:", StringComparison.Ordinal));
    }

    [Fact]
    public void Constructor_PeerCountDiffersFromChannel_Throws()
    {
        var ex = Assert.Throws<ConfigurationException>(() => new SyncEngine(Good(), new CaptureChannel(2), ClusterKey.Generate(), new FakeTimeProvider()));

        Assert.StartsWith("sync.peers:", Assert.Single(ex.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_MtuAboveChannelMaximum_Throws()
    {
        var ex = Assert.Throws<ConfigurationException>(() => new SyncEngine(Good(), new CaptureChannel(1, maxDatagramSize: 1000), ClusterKey.Generate(), new FakeTimeProvider()));

        Assert.StartsWith("sync.mtu:", Assert.Single(ex.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_EpochZero_TakesUnixMillisecondsOfClock()
    {
        var time = new FakeTimeProvider(EngineKit.Start);
        using var engine = new SyncEngine(Good(), new CaptureChannel(1), ClusterKey.Generate(), time);

        Assert.Equal((ulong)EngineKit.Start.ToUnixTimeMilliseconds(), engine.Epoch);
    }

    [Fact]
    public void Constructor_FixedEpoch_Used()
    {
        using var engine = new SyncEngine(Good() with { Epoch = 42 }, new CaptureChannel(1), ClusterKey.Generate(), new FakeTimeProvider());

        Assert.Equal(42UL, engine.Epoch);
    }

    [Fact]
    public void Start_Twice_Throws()
    {
        using var engine = new SyncEngine(Good(), new CaptureChannel(1), ClusterKey.Generate(), new FakeTimeProvider(EngineKit.Start));
        engine.Start();

        Assert.Throws<InvalidOperationException>(engine.Start);
    }

    [Fact]
    public void Dispose_Started_DisposesChannel()
    {
        var channel = new CaptureChannel(1);
        var engine = new SyncEngine(Good(), channel, ClusterKey.Generate(), new FakeTimeProvider(EngineKit.Start));
        engine.Start();

        engine.Dispose();
        engine.Dispose(); // idempotent

        Assert.True(channel.Disposed);
    }
}
