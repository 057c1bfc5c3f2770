namespace ClusterSync.Core.Tests.Protocol;

public class PacketHeaderTests
{
    private static byte[] Bytes(MessageType type = MessageType.Data, ushort sender = 3, HeaderFlags flags = HeaderFlags.Sealed,
        ulong epoch = 1_795_000_000_000, ulong sequence = 42)
    {
        var b = new byte[PacketHeader.Size];
        new PacketHeader(type, sender, flags, epoch, sequence).Write(b);
        return b;
    }

    [Theory]
    [InlineData((byte)1 /* Data */, 1, 0, 1UL, 1UL)]
    [InlineData((byte)1 /* Data */, 255, 1, ulong.MaxValue, (1UL << 63) - 1)]
    [InlineData((byte)2 /* Ack */, 7, 1, 99UL, (1UL << 63) | 1)]
    [InlineData((byte)3 /* Heartbeat */, 2, 0, 5UL, ulong.MaxValue)]
    [InlineData((byte)4 /* Gone */, 200, 1, 12345UL, (1UL << 63) | 77)]
    public void TryRead_WrittenHeader_RoundTrips(byte typeByte, ushort sender, ushort flags, ulong epoch, ulong sequence)
    {
        var type = (MessageType)typeByte;
        var original = new PacketHeader(type, sender, (HeaderFlags)flags, epoch, sequence);
        var b = new byte[PacketHeader.Size + 10];
        original.Write(b);

        var status = PacketHeader.TryRead(b, out var read);

        Assert.Equal(DropReason.None, status);
        Assert.Equal(original, read);
        Assert.Equal(type != MessageType.Data, read.IsControl);
    }

    [Fact]
    public void Write_Layout_IsBigEndianWithMagicAndVersion()
    {
        var b = Bytes(MessageType.Ack, sender: 0x0102, flags: HeaderFlags.Sealed, epoch: 0x0A0B, sequence: PacketHeader.ControlSpace | 5);

        Assert.Equal(0x43, b[0]);
        Assert.Equal(0x53, b[1]);
        Assert.Equal(PacketHeader.Version, b[2]);
        Assert.Equal((byte)MessageType.Ack, b[3]);
        Assert.Equal(0x0102, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(4)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(6)));
        Assert.Equal(0x0A0BUL, BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(8)));
        Assert.Equal(PacketHeader.ControlSpace | 5, BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(16)));
    }

    [Fact]
    public void TryRead_EveryShortLength_ReturnsTruncated()
    {
        var b = Bytes();
        for (int length = 0; length < PacketHeader.Size; length++)
        {
            Assert.Equal(DropReason.Truncated, PacketHeader.TryRead(b.AsSpan(0, length), out _));
        }
    }

    [Theory]
    [InlineData(0, 0x00)]
    [InlineData(0, 0x53)]
    [InlineData(1, 0x43)]
    [InlineData(1, 0x00)]
    public void TryRead_BadMagic_ReturnsBadMagic(int index, byte value)
    {
        var b = Bytes();
        b[index] = value;

        Assert.Equal(DropReason.BadMagic, PacketHeader.TryRead(b, out var header));
        Assert.Equal(default, header);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(255)]
    public void TryRead_BadVersion_ReturnsBadVersion(byte version)
    {
        var b = Bytes();
        b[2] = version;

        Assert.Equal(DropReason.BadVersion, PacketHeader.TryRead(b, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(255)]
    public void TryRead_BadType_ReturnsBadType(byte type)
    {
        var b = Bytes();
        b[3] = type;

        Assert.Equal(DropReason.BadType, PacketHeader.TryRead(b, out _));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(0x8000)]
    [InlineData(0xFFFF)]
    public void TryRead_UnknownFlags_ReturnsBadFlags(ushort flags)
    {
        var b = Bytes();
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), flags);

        Assert.Equal(DropReason.BadFlags, PacketHeader.TryRead(b, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(256)]
    [InlineData(0xFFFF)]
    public void TryRead_SenderOutOfRange_ReturnsBadHeader(ushort sender)
    {
        Assert.Equal(DropReason.BadHeader, PacketHeader.TryRead(Bytes(sender: sender), out _));
    }

    [Fact]
    public void TryRead_EpochZero_ReturnsBadHeader()
    {
        Assert.Equal(DropReason.BadHeader, PacketHeader.TryRead(Bytes(epoch: 0), out _));
    }

    [Theory]
    [InlineData((byte)1 /* Data */, 0UL)]
    [InlineData((byte)2 /* Ack */, 1UL << 63)]
    [InlineData((byte)3 /* Heartbeat */, 1UL << 63)]
    public void TryRead_SequenceZero_ReturnsBadHeader(byte typeByte, ulong sequence)
    {
        var type = (MessageType)typeByte;
        Assert.Equal(DropReason.BadHeader, PacketHeader.TryRead(Bytes(type, sequence: sequence), out _));
    }

    [Fact]
    public void TryRead_DataWithControlSpaceSequence_ReturnsBadHeader()
    {
        Assert.Equal(DropReason.BadHeader, PacketHeader.TryRead(Bytes(MessageType.Data, sequence: PacketHeader.ControlSpace | 1), out _));
    }

    [Theory]
    [InlineData((byte)2 /* Ack */)]
    [InlineData((byte)3 /* Heartbeat */)]
    [InlineData((byte)4 /* Gone */)]
    public void TryRead_ControlWithDataSpaceSequence_ReturnsBadHeader(byte typeByte)
    {
        var type = (MessageType)typeByte;
        Assert.Equal(DropReason.BadHeader, PacketHeader.TryRead(Bytes(type, sequence: 1), out _));
    }
}
