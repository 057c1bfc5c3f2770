namespace ClusterSync.Core.Tests.Protocol;

public class ControlMessagesTests
{
    private const int RangeCountOffset = 26;

    private static byte[] Ack(ulong cumulative, ulong highest, params SequenceRange[] ranges)
    {
        var b = new byte[AckMessage.Size(ranges.Length)];
        Assert.Equal(b.Length, AckMessage.Write(b, 2, 77, cumulative, highest, ranges));
        return b;
    }

    private static bool ReadAck(byte[] b, int spanSize = AckMessage.MaxRanges)
        => AckMessage.TryRead(b, out _, out _, out _, out _, new SequenceRange[spanSize], out _);

    [Fact]
    public void AckTryRead_Written_RoundTrips()
    {
        SequenceRange[] ranges = [new(11, 12), new(15, 15), new(20, 30)];
        var b = new byte[AckMessage.Size(3)];
        int n = AckMessage.Write(b, 513, 0xDEADBEEF, 10, 31, ranges);
        var read = new SequenceRange[AckMessage.MaxRanges];

        bool ok = AckMessage.TryRead(b, out ushort target, out ulong epoch, out ulong cumulative, out ulong highest, read, out int count);

        Assert.True(ok);
        Assert.Equal(AckMessage.Size(3), n);
        Assert.Equal(513, target);
        Assert.Equal(0xDEADBEEFUL, epoch);
        Assert.Equal(10UL, cumulative);
        Assert.Equal(31UL, highest);
        Assert.Equal(ranges, read[..count]);
    }

    [Fact]
    public void AckTryRead_NoRangesAndMaxRanges_Accepted()
    {
        var max = Enumerable.Range(0, AckMessage.MaxRanges).Select(i => new SequenceRange((ulong)(2 * i) + 1, (ulong)(2 * i) + 1)).ToArray();

        Assert.True(ReadAck(Ack(0, 0)));
        Assert.True(ReadAck(Ack(0, 200, max)));
    }

    [Fact]
    public void AckTryRead_WrongLength_ReturnsFalse()
    {
        var valid = Ack(10, 20, new SequenceRange(12, 13));

        Assert.False(ReadAck(valid[..^1]));
        Assert.False(ReadAck(valid.Concat(new byte[1]).ToArray()));
        Assert.False(ReadAck(valid[..RangeCountOffset]));
        Assert.False(ReadAck([]));
    }

    [Fact]
    public void AckTryRead_RangeCountDisagreesWithLength_ReturnsFalse()
    {
        var b = Ack(10, 20, new SequenceRange(12, 13));
        b[RangeCountOffset] = 2;

        Assert.False(ReadAck(b));
    }

    [Fact]
    public void AckTryRead_RangesNotAscending_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(20, 25), new SequenceRange(12, 13))));
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(20, 25), new SequenceRange(25, 30)))); // overlapping
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(20, 25), new SequenceRange(22, 30))));
    }

    [Fact]
    public void AckTryRead_RangeWithLastBeforeFirst_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(20, 19))));
    }

    [Fact]
    public void AckTryRead_RangeAtOrBelowCumulative_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(10, 12))));
        Assert.False(ReadAck(Ack(10, 40, new SequenceRange(5, 6))));
        Assert.True(ReadAck(Ack(10, 40, new SequenceRange(11, 12))));
    }

    [Fact]
    public void AckTryRead_RangeAboveHighest_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, 20, new SequenceRange(15, 21))));
    }

    [Fact]
    public void AckTryRead_HighestBelowCumulative_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, 9)));
    }

    [Fact]
    public void AckTryRead_HighestInControlSpace_ReturnsFalse()
    {
        Assert.False(ReadAck(Ack(10, PacketHeader.ControlSpace)));
    }

    [Fact]
    public void AckTryRead_TooManyRanges_ReturnsFalse()
    {
        int n = AckMessage.MaxRanges + 1;
        var ranges = Enumerable.Range(0, n).Select(i => new SequenceRange((ulong)(2 * i) + 1, (ulong)(2 * i) + 1)).ToArray();
        var b = Ack(0, 1000, ranges);

        // A destination span big enough that only the protocol limit can reject it.
        Assert.False(ReadAck(b, spanSize: 2 * n));
    }

    [Fact]
    public void AckTryRead_MoreRangesThanDestinationSpan_ReturnsFalse()
    {
        var b = Ack(0, 100, new SequenceRange(2, 3), new SequenceRange(5, 6), new SequenceRange(8, 9));

        Assert.False(ReadAck(b, spanSize: 2));
        Assert.True(ReadAck(b, spanSize: 3));
    }

    [Fact]
    public void HeartbeatTryRead_Written_RoundTrips()
    {
        var b = new byte[HeartbeatMessage.Size];
        Assert.Equal(HeartbeatMessage.Size, HeartbeatMessage.Write(b, 500, 101, 4, 200));

        Assert.True(HeartbeatMessage.TryRead(b, out ulong last, out ulong oldest, out byte state, out byte priority));
        Assert.Equal(500UL, last);
        Assert.Equal(101UL, oldest);
        Assert.Equal(4, state);
        Assert.Equal(200, priority);
    }

    [Fact]
    public void HeartbeatTryRead_OldestIsLastPlusOne_Accepted()
    {
        var b = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(b, 0, 1, 0, 0);

        Assert.True(HeartbeatMessage.TryRead(b, out _, out _, out _, out _));
    }

    [Fact]
    public void HeartbeatTryRead_OldestAfterLastPlusOne_ReturnsFalse()
    {
        var b = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(b, 10, 12, 0, 0);

        Assert.False(HeartbeatMessage.TryRead(b, out _, out _, out _, out _));
    }

    [Fact]
    public void HeartbeatTryRead_LastInControlSpace_ReturnsFalse()
    {
        var b = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(b, PacketHeader.ControlSpace, 1, 0, 0);

        Assert.False(HeartbeatMessage.TryRead(b, out _, out _, out _, out _));
    }

    [Theory]
    [InlineData(HeartbeatMessage.Size - 1)]
    [InlineData(HeartbeatMessage.Size + 1)]
    [InlineData(0)]
    public void HeartbeatTryRead_WrongLength_ReturnsFalse(int length)
    {
        var b = new byte[Math.Max(length, HeartbeatMessage.Size)];
        HeartbeatMessage.Write(b, 10, 5, 0, 0);

        Assert.False(HeartbeatMessage.TryRead(b.AsSpan(0, length), out _, out _, out _, out _));
    }

    [Fact]
    public void HeartbeatTryRead_LinkAndHeardLinks_RoundTrip()
    {
        var b = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(b, 10, 5, 2, 100, link: 7, heardLinks: 0b1000_0101);

        Assert.True(HeartbeatMessage.TryRead(b, out ulong last, out _, out byte state, out _, out byte link, out byte heard));
        Assert.Equal(10UL, last);
        Assert.Equal(2, state);
        Assert.Equal(7, link);
        Assert.Equal(0b1000_0101, heard);
        Assert.Equal(7, b[18]);
        Assert.Equal(0b1000_0101, b[19]);
    }

    [Fact]
    public void HeartbeatWrite_SingleLinkForm_WritesLinkZeroAndNoHeardLinks()
    {
        var b = new byte[HeartbeatMessage.Size];
        Array.Fill(b, (byte)0xFF);
        HeartbeatMessage.Write(b, 10, 5, 0, 0);

        Assert.Equal(0, b[18]);
        Assert.Equal(0, b[19]);
    }

    [Theory]
    [InlineData(HeartbeatMessage.MaxLinks)]
    [InlineData(255)]
    public void HeartbeatTryRead_LinkIndexBeyondMaxLinks_ReturnsFalse(int link)
    {
        var b = new byte[HeartbeatMessage.Size];
        HeartbeatMessage.Write(b, 10, 5, 0, 0);
        b[18] = (byte)link;

        Assert.False(HeartbeatMessage.TryRead(b, out _, out _, out _, out _));
    }

    [Fact]
    public void GoneTryRead_Written_RoundTrips()
    {
        var b = new byte[GoneMessage.Size];
        Assert.Equal(GoneMessage.Size, GoneMessage.Write(b, 9, 1234, new SequenceRange(3, 8)));

        Assert.True(GoneMessage.TryRead(b, out ushort target, out ulong epoch, out var range));
        Assert.Equal(9, target);
        Assert.Equal(1234UL, epoch);
        Assert.Equal(new SequenceRange(3, 8), range);
    }

    [Fact]
    public void GoneTryRead_FirstZero_ReturnsFalse()
    {
        var b = new byte[GoneMessage.Size];
        GoneMessage.Write(b, 9, 1234, new SequenceRange(0, 8));

        Assert.False(GoneMessage.TryRead(b, out _, out _, out _));
    }

    [Fact]
    public void GoneTryRead_LastBeforeFirst_ReturnsFalse()
    {
        var b = new byte[GoneMessage.Size];
        GoneMessage.Write(b, 9, 1234, new SequenceRange(8, 7));

        Assert.False(GoneMessage.TryRead(b, out _, out _, out _));
    }

    [Fact]
    public void GoneTryRead_LastInControlSpace_ReturnsFalse()
    {
        var b = new byte[GoneMessage.Size];
        GoneMessage.Write(b, 9, 1234, new SequenceRange(8, PacketHeader.ControlSpace));

        Assert.False(GoneMessage.TryRead(b, out _, out _, out _));
    }

    [Theory]
    [InlineData(GoneMessage.Size - 1)]
    [InlineData(GoneMessage.Size + 1)]
    [InlineData(0)]
    public void GoneTryRead_WrongLength_ReturnsFalse(int length)
    {
        var b = new byte[Math.Max(length, GoneMessage.Size)];
        GoneMessage.Write(b, 9, 1234, new SequenceRange(3, 8));
        BinaryPrimitives.WriteUInt16BigEndian(b, 9);

        Assert.False(GoneMessage.TryRead(b.AsSpan(0, length), out _, out _, out _));
    }
}
