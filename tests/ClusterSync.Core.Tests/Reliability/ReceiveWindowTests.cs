namespace ClusterSync.Core.Tests.Reliability;

public class ReceiveWindowTests
{
    private static ReceiveWindow With(params ulong[] marks)
    {
        var w = new ReceiveWindow();
        foreach (var s in marks)
        {
            Assert.Equal(WindowCheck.New, w.Check(s));
            w.Mark(s);
        }

        return w;
    }

    private static SequenceRange[] Gaps(ReceiveWindow w, int max = 16)
    {
        var ranges = new SequenceRange[max];
        int n = w.CollectGaps(ranges);
        return ranges[..n];
    }

    [Fact]
    public void Mark_InOrder_AdvancesCumulative()
    {
        var w = new ReceiveWindow();
        for (ulong s = 1; s <= 5; s++)
        {
            w.Mark(s);
            Assert.Equal(s, w.Cumulative);
            Assert.Equal(s, w.Highest);
        }

        Assert.False(w.HasGaps);
    }

    [Fact]
    public void Mark_OutOfOrder_CumulativeWaitsForTheGap()
    {
        var w = With(3, 2);
        Assert.Equal(0UL, w.Cumulative);
        Assert.Equal(3UL, w.Highest);
        Assert.True(w.HasGaps);

        w.Mark(1);

        Assert.Equal(3UL, w.Cumulative);
        Assert.False(w.HasGaps);
    }

    [Fact]
    public void Mark_ReverseOrderAcrossWords_CumulativeCatchesUp()
    {
        var w = new ReceiveWindow();
        for (ulong s = 300; s >= 2; s--)
        {
            w.Mark(s);
        }

        Assert.Equal(0UL, w.Cumulative);
        w.Mark(1);
        Assert.Equal(300UL, w.Cumulative);
    }

    [Fact]
    public void Mark_AcrossWindowWrap_ReusesBitsCorrectly()
    {
        var w = new ReceiveWindow();
        Assert.Equal(WindowCheck.New, w.Check(ReceiveWindow.Size));
        w.Mark(ReceiveWindow.Size);
        for (ulong s = 1; s < ReceiveWindow.Size; s++)
        {
            w.Mark(s);
        }

        Assert.Equal((ulong)ReceiveWindow.Size, w.Cumulative);
        Assert.Equal(WindowCheck.New, w.Check(ReceiveWindow.Size + 1));
        Assert.Equal(WindowCheck.New, w.Check(2 * (ulong)ReceiveWindow.Size));
        Assert.Equal(WindowCheck.TooFar, w.Check((2 * (ulong)ReceiveWindow.Size) + 1));
    }

    [Fact]
    public void Check_AtOrBelowCumulative_ReturnsDuplicate()
    {
        var w = With(1, 2, 3);

        Assert.Equal(WindowCheck.Duplicate, w.Check(0));
        Assert.Equal(WindowCheck.Duplicate, w.Check(1));
        Assert.Equal(WindowCheck.Duplicate, w.Check(3));
        Assert.Equal(WindowCheck.New, w.Check(4));
    }

    [Fact]
    public void Check_ReceivedAboveCumulative_ReturnsDuplicate()
    {
        var w = With(5, 9);

        Assert.Equal(WindowCheck.Duplicate, w.Check(5));
        Assert.Equal(WindowCheck.Duplicate, w.Check(9));
        Assert.Equal(WindowCheck.New, w.Check(4));
        Assert.Equal(WindowCheck.New, w.Check(6));
        Assert.Equal(WindowCheck.New, w.Check(10));
    }

    [Fact]
    public void Check_BeyondWindowSize_ReturnsTooFar()
    {
        var w = new ReceiveWindow();
        Assert.Equal(WindowCheck.New, w.Check(ReceiveWindow.Size));
        Assert.Equal(WindowCheck.TooFar, w.Check(ReceiveWindow.Size + 1));
        Assert.Equal(WindowCheck.TooFar, w.Check(ulong.MaxValue >> 1));

        for (ulong s = 1; s <= 10; s++)
        {
            w.Mark(s);
        }

        Assert.Equal(WindowCheck.New, w.Check(10 + (ulong)ReceiveWindow.Size));
        Assert.Equal(WindowCheck.TooFar, w.Check(11 + (ulong)ReceiveWindow.Size));
    }

    [Fact]
    public void SlideFor_SequenceBeyondWindow_WritesOffAndCountsLost()
    {
        var w = With(1, 3);
        ulong seq = ReceiveWindow.Size + 5UL;
        Assert.Equal(WindowCheck.TooFar, w.Check(seq));

        ulong lost = w.SlideFor(seq);

        // 2, 4 and 5 were never received; 3 was.
        Assert.Equal(3UL, lost);
        Assert.Equal(5UL, w.Cumulative);
        Assert.Equal(WindowCheck.New, w.Check(seq));
        w.Mark(seq);
        Assert.Equal(WindowCheck.Duplicate, w.Check(seq));
    }

    [Fact]
    public void SlideFor_SequenceInsideWindow_ChangesNothing()
    {
        var w = With(1, 3);

        Assert.Equal(0UL, w.SlideFor(ReceiveWindow.Size));
        Assert.Equal(1UL, w.Cumulative);
        Assert.Equal(WindowCheck.New, w.Check(2));
    }

    [Fact]
    public void SkipThrough_CountsOnlyMissingSequences()
    {
        var w = With(2, 4, 7);

        ulong missing = w.SkipThrough(5);

        Assert.Equal(3UL, missing); // 1, 3, 5
        Assert.Equal(5UL, w.Cumulative);
        Assert.Equal(WindowCheck.New, w.Check(6));
        Assert.Equal(WindowCheck.Duplicate, w.Check(7));
    }

    [Fact]
    public void SkipThrough_NextAlreadyReceived_AdvancesPastIt()
    {
        var w = With(7);

        Assert.Equal(6UL, w.SkipThrough(6));
        Assert.Equal(7UL, w.Cumulative);
        Assert.False(w.HasGaps);
    }

    [Fact]
    public void SkipThrough_AtOrBelowCumulative_ReturnsZero()
    {
        var w = With(1, 2, 3);

        Assert.Equal(0UL, w.SkipThrough(2));
        Assert.Equal(0UL, w.SkipThrough(3));
        Assert.Equal(3UL, w.Cumulative);
    }

    [Fact]
    public void SkipThrough_BeyondHighest_RaisesHighest()
    {
        var w = With(1);

        Assert.Equal(9UL, w.SkipThrough(10));
        Assert.Equal(10UL, w.Highest);
        Assert.Equal(10UL, w.Cumulative);
    }

    [Fact]
    public void CollectGaps_HolesBetweenReceived_ReturnsExactRanges()
    {
        var w = With(1, 2, 5, 6, 9);

        Assert.Equal([new SequenceRange(3, 4), new SequenceRange(7, 8)], Gaps(w));
    }

    [Fact]
    public void CollectGaps_NoGaps_ReturnsNone()
    {
        var w = With(1, 2, 3);

        Assert.Empty(Gaps(w));
        Assert.Empty(Gaps(new ReceiveWindow()));
    }

    [Fact]
    public void CollectGaps_LostTailAfterNoteAnnounced_IncludesTail()
    {
        var w = With(1, 2, 5);
        w.NoteAnnounced(8);

        Assert.True(w.HasGaps);
        Assert.Equal(8UL, w.Target);
        Assert.Equal([new SequenceRange(3, 4), new SequenceRange(6, 8)], Gaps(w));
    }

    [Fact]
    public void CollectGaps_NothingReceivedButAnnounced_WholeRangeMissing()
    {
        var w = new ReceiveWindow();
        w.NoteAnnounced(5);

        Assert.Equal([new SequenceRange(1, 5)], Gaps(w));
    }

    [Fact]
    public void NoteAnnounced_Lower_IsIgnored()
    {
        var w = new ReceiveWindow();
        w.NoteAnnounced(5);
        w.NoteAnnounced(3);

        Assert.Equal(5UL, w.Target);
    }

    [Fact]
    public void CollectGaps_AnnouncedBeyondWindow_CappedAtWindow()
    {
        var w = new ReceiveWindow();
        w.NoteAnnounced(ReceiveWindow.Size + 100UL);

        Assert.Equal([new SequenceRange(1, ReceiveWindow.Size)], Gaps(w));
    }

    [Fact]
    public void CollectGaps_MoreGapsThanSpan_LimitedBySpanLength()
    {
        var w = With(2, 4, 6, 8);
        w.NoteAnnounced(10);

        Assert.Equal([new SequenceRange(1, 1), new SequenceRange(3, 3)], Gaps(w, max: 2));
        Assert.Equal(
            [new SequenceRange(1, 1), new SequenceRange(3, 3), new SequenceRange(5, 5), new SequenceRange(7, 7), new SequenceRange(9, 10)],
            Gaps(w, max: 16));
        Assert.Empty(Gaps(w, max: 0));
    }

    [Fact]
    public void Reset_AfterUse_StartsOver()
    {
        var w = With(1, 2, 5);
        w.NoteAnnounced(9);

        w.Reset();

        Assert.Equal(0UL, w.Cumulative);
        Assert.Equal(0UL, w.Highest);
        Assert.False(w.HasGaps);
        Assert.Equal(WindowCheck.New, w.Check(1));
        Assert.Equal(WindowCheck.New, w.Check(5));
    }

    [Fact]
    public void CollectGaps_LastWindowSlotReceivedAndAnnouncedBeyond_EveryRangeWellFormedAndInsideWindow()
    {
        var w = With(ReceiveWindow.Size);
        w.NoteAnnounced(ReceiveWindow.Size + 5UL);

        var gaps = Gaps(w);

        Assert.All(gaps, r =>
        {
            Assert.True(r.First <= r.Last, $"inverted range [{r.First}, {r.Last}]");
            Assert.True(r.Last <= w.Cumulative + ReceiveWindow.Size, $"range [{r.First}, {r.Last}] beyond the window");
        });
        Assert.Equal(new SequenceRange(1, ReceiveWindow.Size - 1), gaps[0]);
    }

    [Fact]
    public void CollectGaps_LastWindowSlotReceivedAndAnnouncedBeyond_ProducesAnAckThePeerAccepts()
    {
        var w = With(ReceiveWindow.Size);
        w.NoteAnnounced(ReceiveWindow.Size + 5UL);
        var ranges = new SequenceRange[AckMessage.MaxRanges];
        int n = w.CollectGaps(ranges);
        var body = new byte[AckMessage.Size(n)];
        AckMessage.Write(body, 1, 1, w.Cumulative, w.Target, ranges.AsSpan(0, n));

        Assert.True(AckMessage.TryRead(body, out _, out _, out _, out _, new SequenceRange[AckMessage.MaxRanges], out _));
    }

    [Fact]
    public void Mark_GapThenLaterInSameWord_OutOfOrderDatagramRememberedAndItsReplayRefused()
    {
        // 3 arrives before 1: when 1 closes the run, only 1 may be consumed; 3 must stay marked (else its replay passes).
        var w = With(3, 1);

        Assert.Equal(1UL, w.Cumulative);
        Assert.Equal(WindowCheck.Duplicate, w.Check(3));
        Assert.Equal(WindowCheck.New, w.Check(2));
        w.Mark(2);
        Assert.Equal(3UL, w.Cumulative);
        Assert.Equal(WindowCheck.Duplicate, w.Check(3));
    }

    [Fact]
    public void Mark_RunEndingMidWordWithLaterBitsSet_ConsumesOnlyTheRun()
    {
        var w = With(70, 72, 65, 66, 67);

        Assert.Equal(0UL, w.Cumulative);
        for (ulong s = 1; s <= 64; s++)
        {
            w.Mark(s);
        }

        Assert.Equal(67UL, w.Cumulative);
        Assert.Equal(WindowCheck.Duplicate, w.Check(70));
        Assert.Equal(WindowCheck.Duplicate, w.Check(72));
        Assert.Equal([new SequenceRange(68, 69), new SequenceRange(71, 71)], Gaps(w));
    }

    [Fact]
    public void CollectGaps_SingleSequenceTailGap_AskedFor()
    {
        var w = With(1, 2, 3);
        w.NoteAnnounced(4);

        Assert.True(w.HasGaps);
        Assert.Equal([new SequenceRange(4, 4)], Gaps(w));
    }

    [Fact]
    public void CollectGaps_SingleSequenceGapsInsideAndAtTheTail_EachAskedFor()
    {
        var w = With(1, 2, 4);
        w.NoteAnnounced(5);

        Assert.True(w.HasGaps);
        Assert.Equal([new SequenceRange(3, 3), new SequenceRange(5, 5)], Gaps(w));
        var single = With(1, 3);
        Assert.True(single.HasGaps);
        Assert.Equal([new SequenceRange(2, 2)], Gaps(single));
    }
}
