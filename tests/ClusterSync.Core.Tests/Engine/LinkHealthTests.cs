namespace ClusterSync.Core.Tests.Engine;

public sealed class LinkHealthTests
{
    private static readonly TimeSpan s_dead = TimeSpan.FromMilliseconds(300);
    private readonly FakeTimeProvider _time = new(EngineKit.Start);
    private readonly List<string> _events = [];
    private readonly LinkHealth _health;

    public LinkHealthTests()
    {
        // Two peers, three links with ids 5, 7, 9 (indexes 0, 1, 2).
        _health = new LinkHealth(2, [5, 7, 9], s_dead, _time)
        {
            LinkChanged = (p, l, up) => _events.Add($"p{p} link{l} {(up ? "up" : "down")}"),
            Switched = (p, from, to) => _events.Add($"p{p} {from}->{to}"),
        };
    }

    private long Now => _time.GetTimestamp();

    /// <summary>The peer's heartbeat on each of <paramref name="links"/> arrives, reporting it hears us on <paramref name="reported"/>.</summary>
    private void Heartbeat(int peer, int[] links, byte reported)
    {
        foreach (var l in links)
        {
            _health.Heard(peer, l, Now);
        }

        _health.Reported(peer, reported);
    }

    [Fact]
    public void Evaluate_NothingHeard_CarriesOnLowestLinkWithoutSwitching()
    {
        _health.Evaluate(Now);

        Assert.Equal(0, _health.Carrying(0));
        Assert.Equal(0, _health.Switches(0));
        Assert.Empty(_events);
        Assert.All(_health.Status(0, Now), s => Assert.False(s.Up));
    }

    [Fact]
    public void Evaluate_AllLinksHealthy_CarriesOnLowestIdAndReportsEveryLinkUp()
    {
        Heartbeat(0, [2, 1, 0], 0b111);
        _health.Evaluate(Now);

        Assert.Equal(0, _health.Carrying(0));
        var status = _health.Status(0, Now);
        Assert.Equal([5, 7, 9], status.Select(s => s.LinkId));
        Assert.All(status, s => Assert.True(s.Up));
        Assert.True(status[0].Carrying);
        Assert.Equal(0, _health.Switches(0));
    }

    [Fact]
    public void Evaluate_LowestLinkSilentForDeadInterval_DownThenTrafficOnNextLowest()
    {
        Heartbeat(0, [0, 1, 2], 0b111);
        _health.Evaluate(Now);

        // From now on only links 1 and 2 carry the peer's heartbeats, every 100 ms.
        for (int i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Heartbeat(0, [1, 2], 0b111);
            _health.Evaluate(Now);
            Assert.Equal(0, _health.Carrying(0)); // 300 ms is not yet more than the dead interval
        }

        _time.Advance(TimeSpan.FromMilliseconds(1));
        _health.Evaluate(Now);

        Assert.Equal(1, _health.Carrying(0));
        Assert.Equal(["p0 link0 up", "p0 link1 up", "p0 link2 up", "p0 link0 down", "p0 0->1"], _events);
        Assert.Equal(1, _health.Switches(0));
        Assert.Equal(0, _health.Carrying(1)); // the other peer is untouched
    }

    [Fact]
    public void Evaluate_PeerNoLongerHearsUsOnLowestLink_SwitchesAlthoughStillHeardThere()
    {
        Heartbeat(0, [0, 1], 0b011);
        _health.Evaluate(Now);
        Assert.Equal(0, _health.Carrying(0));

        _time.Advance(TimeSpan.FromMilliseconds(100));
        Heartbeat(0, [0, 1], 0b010); // what we send on link 0 no longer reaches the peer
        _health.Evaluate(Now);

        Assert.Equal(1, _health.Carrying(0));
        var status = _health.Status(0, Now);
        Assert.False(status[0].Up);
        Assert.False(status[0].PeerHearsUs);
        Assert.Equal(0, status[0].HeardAgeMs);
    }

    [Fact]
    public void Evaluate_LowestLinkRecovers_TrafficReturnsToIt()
    {
        Heartbeat(0, [0, 1], 0b011);
        _health.Evaluate(Now);
        _time.Advance(TimeSpan.FromMilliseconds(350));
        Heartbeat(0, [1], 0b010);
        _health.Evaluate(Now);
        Assert.Equal(1, _health.Carrying(0));

        _time.Advance(TimeSpan.FromMilliseconds(100));
        Heartbeat(0, [0, 1], 0b011);
        _health.Evaluate(Now);

        Assert.Equal(0, _health.Carrying(0));
        Assert.Equal(2, _health.Switches(0));
        Assert.Equal("p0 1->0", _events[^1]);
    }

    [Fact]
    public void Evaluate_StartUpHeardOnHigherLinksFirst_StaysOnLowestUntilALinkIsUp()
    {
        // Start-up: heartbeats arrive on links 1 and 2 before link 0's and before any report: no link is up.
        Heartbeat(0, [2, 1], 0);
        _health.Evaluate(Now);
        Assert.Equal(0, _health.Carrying(0));

        _health.Reported(0, 0b110);
        _health.Evaluate(Now);
        Assert.Equal(1, _health.Carrying(0)); // link 1 is up both ways, link 0 is not

        Heartbeat(0, [0, 1, 2], 0b111);
        _health.Evaluate(Now);
        Assert.Equal(0, _health.Carrying(0)); // link 0 up both ways: lowest id wins
        Assert.Equal(2, _health.Switches(0));
    }

    [Fact]
    public void Evaluate_NoLinkUpAfterOneWas_StaysWhileHeardElseLowestHeard()
    {
        Heartbeat(0, [0, 1, 2], 0b111);
        _health.Evaluate(Now);
        Assert.Equal(0, _health.Carrying(0));

        // The peer stops hearing us anywhere, but we still hear it on every link: nothing is up, stay on link 0.
        _time.Advance(TimeSpan.FromMilliseconds(100));
        Heartbeat(0, [0, 1, 2], 0);
        _health.Evaluate(Now);
        Assert.Equal(0, _health.Carrying(0));

        // Link 0 also goes silent: move to the lowest link the peer is still heard on.
        for (int i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            Heartbeat(0, [2, 1], 0);
        }

        _time.Advance(TimeSpan.FromMilliseconds(50));
        Heartbeat(0, [2, 1], 0);
        _health.Evaluate(Now);
        Assert.Equal(1, _health.Carrying(0));
    }

    [Fact]
    public void Evaluate_EveryLinkSilent_StaysOnLastLink()
    {
        Heartbeat(0, [0, 1], 0b011);
        _health.Evaluate(Now);
        _time.Advance(TimeSpan.FromSeconds(2));
        _health.Evaluate(Now);

        Assert.Equal(0, _health.Carrying(0));
        Assert.Equal(0, _health.Switches(0));
        Assert.Equal(0, _health.HeardMask(0, Now));
    }

    [Fact]
    public void HeardMask_LinksHeardWithinDeadInterval_SetsTheirBits()
    {
        _health.Heard(1, 0, Now);
        _time.Advance(TimeSpan.FromMilliseconds(200));
        _health.Heard(1, 2, Now);
        Assert.Equal(0b101, _health.HeardMask(1, Now));

        _time.Advance(TimeSpan.FromMilliseconds(150));
        Assert.Equal(0b100, _health.HeardMask(1, Now));
        Assert.Equal(0, _health.HeardMask(0, Now));
    }
}
