namespace ClusterSync.Core.Tests.Reliability;

public class ControlReplayWindowTests
{
    [Fact]
    public void Check_Replay_Rejected()
    {
        var w = new ControlReplayWindow();
        Assert.True(w.Check(5));
        w.Mark(5);

        Assert.False(w.Check(5));
    }

    [Fact]
    public void Check_InOrder_EachAcceptedOnce()
    {
        var w = new ControlReplayWindow();
        for (ulong s = 1; s <= 200; s++)
        {
            Assert.True(w.Check(s));
            w.Mark(s);
            Assert.False(w.Check(s));
        }

        Assert.False(w.Check(137));
    }

    [Fact]
    public void Check_ReorderedWithin64_AcceptedOnce()
    {
        var w = new ControlReplayWindow();
        w.Mark(100);

        foreach (ulong s in new ulong[] { 99, 60, 37, 80 })
        {
            Assert.True(w.Check(s), $"{s} rejected");
            w.Mark(s);
            Assert.False(w.Check(s), $"{s} accepted twice");
        }

        Assert.True(w.Check(98));
    }

    [Fact]
    public void Check_OlderThan64_Rejected()
    {
        var w = new ControlReplayWindow();
        w.Mark(100);

        Assert.True(w.Check(37));  // 63 behind
        Assert.False(w.Check(36)); // 64 behind
        Assert.False(w.Check(1));
    }

    [Fact]
    public void Mark_SmallJump_KeepsEarlierBits()
    {
        var w = new ControlReplayWindow();
        w.Mark(1);
        w.Mark(3);

        Assert.False(w.Check(1));
        Assert.True(w.Check(2));
        Assert.False(w.Check(3));
    }

    [Fact]
    public void Mark_JumpOf64OrMore_ForgetsEverythingOlder()
    {
        var w = new ControlReplayWindow();
        w.Mark(10);
        w.Mark(74);

        Assert.False(w.Check(10)); // now too old
        Assert.True(w.Check(11));
        Assert.True(w.Check(73));
        Assert.False(w.Check(74));
    }

    [Fact]
    public void Reset_AfterUse_AcceptsAgain()
    {
        var w = new ControlReplayWindow();
        w.Mark(5);
        w.Reset();

        Assert.True(w.Check(5));
    }
}
