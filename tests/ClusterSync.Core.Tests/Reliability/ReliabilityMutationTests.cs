namespace ClusterSync.Core.Tests.Reliability;

/// <summary>
/// Tests written against the mutation-testing survivors of Reliability (bench/mutation.sh reliability): each pins a
/// behaviour of the replay and receive windows or the resend buffer that no other test checked.
/// </summary>
public sealed class ReliabilityMutationTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(200)]
    public void ControlReplayWindow_JumpOf64OrMoreAfterSeveralMarks_EverySequenceBetweenIsStillAccepted(int jump)
    {
        var w = new ControlReplayWindow();
        for (ulong s = 1; s <= 10; s++)
        {
            w.Mark(s);
        }

        ulong top = 10 + (ulong)jump;
        w.Mark(top);

        // The bitmap now describes top, top-1, ...: the earlier marks must not reappear as if they were near top.
        for (ulong s = top - 63; s < top; s++)
        {
            Assert.True(w.Check(s), $"sequence {s} was never seen and is inside the window");
        }

        Assert.False(w.Check(top));
    }

    [Fact]
    public void ControlReplayWindow_SameReorderedSequenceMarkedTwice_StaysRejected()
    {
        var w = new ControlReplayWindow();
        w.Mark(10);
        w.Mark(5);
        w.Mark(5);

        Assert.False(w.Check(5));
        Assert.True(w.Check(6));
    }

    [Fact]
    public void ReceiveWindow_SameOutOfOrderSequenceMarkedTwice_StaysDuplicate()
    {
        var w = new ReceiveWindow();
        w.Mark(3);
        w.Mark(3);

        Assert.Equal(WindowCheck.Duplicate, w.Check(3));
        w.Mark(1);
        w.Mark(2);
        Assert.Equal(3UL, w.Cumulative);
    }

    /// <summary>
    /// Blocks of 128 delivered in reverse (the cumulative point then jumps by runs of 63, 64 and 1 bits) over more
    /// than the window: every sequence is new exactly once and a duplicate right after, also once the bitmap's words
    /// have been reused — a consumed run that left a bit behind would refuse a later sequence as a replay.
    /// </summary>
    [Fact]
    public void ReceiveWindow_ReversedBlocksBeyondTheWindow_EachSequenceAcceptedExactlyOnce()
    {
        var w = new ReceiveWindow();
        const ulong Block = 128;
        ulong end = (ulong)ReceiveWindow.Size + (4 * Block);
        for (ulong start = 1; start <= end; start += Block)
        {
            for (ulong s = start + Block - 1; s >= start; s--)
            {
                Assert.Equal(WindowCheck.New, w.Check(s));
                w.Mark(s);
                Assert.Equal(WindowCheck.Duplicate, w.Check(s));
            }

            Assert.Equal(start + Block - 1, w.Cumulative);
        }
    }

    [Fact]
    public void ReceiveWindow_WholeWordReceivedBeforeTheGapBelowIt_WordClearedForItsNextUse()
    {
        var w = new ReceiveWindow();
        for (ulong s = 64; s < 128; s++)
        {
            w.Mark(s); // word 1, complete, above a gap
        }

        for (ulong s = 1; s < 64; s++)
        {
            w.Mark(s);
        }

        Assert.Equal(127UL, w.Cumulative);
        ulong next = 64 + (ulong)ReceiveWindow.Size; // maps to word 1, bit 0 again
        for (ulong s = 128; s < next; s++)
        {
            w.Mark(s);
        }

        for (ulong s = next; s < next + 64; s++)
        {
            Assert.Equal(WindowCheck.New, w.Check(s));
        }
    }

    [Fact]
    public void ReceiveWindow_SkipThroughAcrossSeveralWords_CountsMissingAndKeepsWhatWasReceived()
    {
        var w = new ReceiveWindow();
        w.Mark(70);
        w.Mark(200);
        w.Mark(300);

        Assert.Equal(248UL, w.SkipThrough(250)); // 1..250 but 70 and 200
        Assert.Equal(250UL, w.Cumulative);
        Assert.Equal(WindowCheck.Duplicate, w.Check(200));
        Assert.Equal(WindowCheck.Duplicate, w.Check(300));
        Assert.Equal(WindowCheck.New, w.Check(251));
    }

    [Fact]
    public void ReceiveWindow_SlideForSmallSequences_WritesNothingOff()
    {
        var fresh = new ReceiveWindow();
        Assert.Equal(0UL, fresh.SlideFor(5));
        Assert.Equal(0UL, fresh.Cumulative);

        var w = new ReceiveWindow();
        for (ulong s = 1; s <= 10; s++)
        {
            w.Mark(s);
        }

        // Inside the window, and the cumulative point plus the sequence exceeds the window size.
        ulong seq = ReceiveWindow.Size - 5;
        Assert.Equal(0UL, w.SlideFor(seq));
        Assert.Equal(10UL, w.Cumulative);
        Assert.Equal(WindowCheck.New, w.Check(11));
    }

    [Fact]
    public void ResendBuffer_SizeOverflowingAnInt_Refused()
    {
        // 65,536 × 65,537 bytes wraps to 65,536 in 32 bits: it must be refused, not silently allocated short.
        Assert.Throws<OverflowException>(() => new ResendBuffer(65_536, 65_537));
    }
}
