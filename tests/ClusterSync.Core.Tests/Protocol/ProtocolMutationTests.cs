namespace ClusterSync.Core.Tests.Protocol;

/// <summary>
/// Tests written against the mutation-testing survivors of Protocol (bench/mutation.sh protocol): the anti-entropy
/// head's length and cutoff checks, malformed digest and range-entries bodies, and a record created at time 0.
/// </summary>
public sealed class ProtocolMutationTests
{
    private const int Head = AntiEntropyMessages.EntriesHeadSize - 2;

    [Fact]
    public void TryReadHead_ExactlyAHead_Read()
    {
        var body = new byte[AntiEntropyMessages.RequestSize];
        AntiEntropyMessages.WriteRequest(body, 3, 1234, 2, 0x0FFF, 1);

        Assert.True(AntiEntropyMessages.TryReadHead(body.AsSpan(0, Head), out ushort target, out long cutoff, out byte depth, out ulong prefix));
        Assert.Equal((3, 1234L, (byte)2, 0x0FFFUL), (target, cutoff, depth, prefix));
    }

    [Fact]
    public void TryReadHead_OneByteShort_False()
    {
        var body = new byte[AntiEntropyMessages.RequestSize];
        AntiEntropyMessages.WriteRequest(body, 3, 1234, 0, 0, 1);

        Assert.False(AntiEntropyMessages.TryReadHead(body.AsSpan(0, Head - 1), out ushort target, out long cutoff, out _, out _));
        Assert.Equal((0, 0L), (target, cutoff));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    public void TryReadRequest_CutoffNotPositive_False(long cutoffMs)
    {
        var body = new byte[AntiEntropyMessages.RequestSize];
        AntiEntropyMessages.WriteRequest(body, 3, cutoffMs, 0, 0, 1);

        Assert.False(AntiEntropyMessages.TryReadRequest(body, out _, out _, out _, out _, out _));
        AntiEntropyMessages.WriteRequest(body, 3, 1, 0, 0, 1);
        Assert.True(AntiEntropyMessages.TryReadRequest(body, out _, out long cutoff, out _, out _, out _));
        Assert.Equal(1L, cutoff);
    }

    [Fact]
    public void TryReadDigest_BadHeadOrLength_FalseWithEverythingZeroed()
    {
        var children = new RangeDigest[AntiEntropyMessages.Children];
        var body = new byte[AntiEntropyMessages.DigestSize];
        AntiEntropyMessages.WriteDigest(body, 3, 0, 0, 0, children); // cutoff 0: malformed

        Assert.False(AntiEntropyMessages.TryReadDigest(body, out ushort target, out long cutoff, out byte depth, out ulong prefix, children));
        Assert.Equal((0, 0L, (byte)0, 0UL), (target, cutoff, depth, prefix));
        AntiEntropyMessages.WriteDigest(body, 3, 99, 1, 5, children);
        Assert.False(AntiEntropyMessages.TryReadDigest(body.AsSpan(0, body.Length - 1), out target, out _, out _, out _, children));
        Assert.Equal(0, target);
        Assert.True(AntiEntropyMessages.TryReadDigest(body, out target, out cutoff, out depth, out prefix, children));
        Assert.Equal((3, 99L, (byte)1, 5UL), (target, cutoff, depth, prefix));
    }

    [Fact]
    public void TryReadEntriesHead_BadHeadOrShort_False()
    {
        var body = new byte[AntiEntropyMessages.EntriesHeadSize];
        AntiEntropyMessages.WriteEntriesHead(body, 3, 99, AntiEntropyMessages.MaxDepth, 0, 7); // too deep

        Assert.False(AntiEntropyMessages.TryReadEntriesHead(body, out ushort target, out long cutoff, out byte depth, out ulong prefix, out ushort count));
        Assert.Equal((0, 0L, (byte)0, 0UL, (ushort)0), (target, cutoff, depth, prefix, count));
        AntiEntropyMessages.WriteEntriesHead(body, 3, 99, 1, 5, 7);
        Assert.False(AntiEntropyMessages.TryReadEntriesHead(body.AsSpan(0, body.Length - 1), out _, out _, out _, out _, out count));
        Assert.Equal(0, count);
        Assert.True(AntiEntropyMessages.TryReadEntriesHead(body, out target, out cutoff, out depth, out prefix, out count));
        Assert.Equal((3, 99L, (byte)1, 5UL, (ushort)7), (target, cutoff, depth, prefix, count));
    }

    [Fact]
    public void RecordTryRead_CreatedAtTimeZero_Accepted()
    {
        var e = TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: false, counters: false);
        e.Entry.CreatedMs = 0;
        e.Entry.UpdatedMs = 0;
        var buffer = new byte[RecordCodec.MaxRecordSize];
        int n = RecordCodec.Write(buffer, e);

        Assert.Equal(n, RecordCodec.TryRead(buffer.AsSpan(0, n), out var read));
        Assert.Equal((0L, 0L), (read.Entry.CreatedMs, read.Entry.UpdatedMs));
        Assert.Equal(e.Key, read.Key);
    }
}
