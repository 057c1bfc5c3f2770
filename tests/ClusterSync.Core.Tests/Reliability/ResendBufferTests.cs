namespace ClusterSync.Core.Tests.Reliability;

public class ResendBufferTests
{
    private static void Put(ResendBuffer buffer, ulong seq, byte fill, int length)
    {
        var slot = buffer.Rent(seq);
        slot.Span[..length].Fill(fill);
        buffer.Commit(seq, length);
    }

    [Fact]
    public void TryGet_AfterCommit_ReturnsCommittedBytes()
    {
        var b = new ResendBuffer(16, 64);
        Put(b, 1, 0xAA, 10);
        Put(b, 2, 0xBB, 64);

        Assert.True(b.TryGet(1, out var d1));
        Assert.True(b.TryGet(2, out var d2));
        Assert.Equal(Enumerable.Repeat((byte)0xAA, 10), d1.ToArray());
        Assert.Equal(Enumerable.Repeat((byte)0xBB, 64), d2.ToArray());
    }

    [Fact]
    public void TryGet_NeverCommitted_ReturnsFalse()
    {
        var b = new ResendBuffer(16, 64);

        Assert.False(b.TryGet(1, out var d));
        Assert.True(d.IsEmpty);
        Assert.False(b.TryGet(0, out _));
    }

    [Fact]
    public void TryGet_RentedButNotCommitted_ReturnsFalse()
    {
        var b = new ResendBuffer(16, 64);
        b.Rent(3);

        Assert.False(b.TryGet(3, out _));
    }

    [Fact]
    public void TryGet_SlotOverwritten_ReturnsFalse()
    {
        var b = new ResendBuffer(16, 64);
        Put(b, 1, 0x01, 8);
        Put(b, 17, 0x11, 8);

        Assert.False(b.TryGet(1, out _));
        Assert.True(b.TryGet(17, out var d));
        Assert.Equal(Enumerable.Repeat((byte)0x11, 8), d.ToArray());
    }

    [Fact]
    public void TryGet_SlotBeingRewritten_ReturnsFalseForOldSequence()
    {
        var b = new ResendBuffer(16, 64);
        Put(b, 2, 0x02, 8);
        b.Rent(18);

        Assert.False(b.TryGet(2, out _));
        Assert.False(b.TryGet(18, out _));
    }

    [Theory]
    [InlineData(0UL, 1UL)]
    [InlineData(1UL, 1UL)]
    [InlineData(15UL, 1UL)]
    [InlineData(16UL, 1UL)]
    [InlineData(17UL, 2UL)]
    [InlineData(100UL, 85UL)]
    public void OldestHeld_GivenNewest_IsFirstSequenceStillInBuffer(ulong newest, ulong expected)
    {
        var b = new ResendBuffer(16, 8);

        Assert.Equal(expected, b.OldestHeld(newest));
    }

    [Fact]
    public void OldestHeld_AfterFilling_MatchesWhatTryGetFinds()
    {
        var b = new ResendBuffer(16, 8);
        for (ulong s = 1; s <= 40; s++)
        {
            Put(b, s, (byte)s, 4);
        }

        ulong oldest = b.OldestHeld(40);
        Assert.False(b.TryGet(oldest - 1, out _));
        for (ulong s = oldest; s <= 40; s++)
        {
            Assert.True(b.TryGet(s, out _));
        }
    }

    [Fact]
    public void Constructor_FewerThan16Slots_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResendBuffer(15, 64));
    }
}
