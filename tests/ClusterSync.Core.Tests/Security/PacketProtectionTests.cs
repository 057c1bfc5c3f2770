namespace ClusterSync.Core.Tests.Security;

public class PacketProtectionTests
{
    private const ushort Sender = 3;
    private const ulong Epoch = 1_795_000_000_123;
    private static readonly ClusterKey Key = ClusterKey.Generate();

    private static byte[] Plaintext(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 7)).ToArray();

    private static byte[] Sealed(byte[] body, ClusterKey? key = null, ulong sequence = 5)
    {
        var datagram = new byte[PacketHeader.Size + body.Length + PacketProtection.TagSize];
        new PacketHeader(MessageType.Data, Sender, HeaderFlags.Sealed, Epoch, sequence).Write(datagram);
        body.CopyTo(datagram, PacketHeader.Size);
        using var sealer = PacketProtection.Create(key ?? Key, Sender, Epoch);
        Assert.Equal(datagram.Length, sealer.Seal(datagram, body.Length));
        return datagram;
    }

    private static int Open(byte[] datagram, ClusterKey? key = null, ushort sender = Sender, ulong epoch = Epoch)
    {
        using var opener = PacketProtection.Create(key ?? Key, sender, epoch);
        return opener.Open(datagram);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(1300)]
    public void SealOpen_RoundTrip_RestoresBody(int length)
    {
        var body = Plaintext(length);
        var datagram = Sealed(body);
        if (length > 8)
        {
            Assert.NotEqual(body, datagram.AsSpan(PacketHeader.Size, length).ToArray()); // encrypted
        }

        int n = Open(datagram);

        Assert.Equal(length, n);
        Assert.Equal(body, datagram.AsSpan(PacketHeader.Size, n).ToArray());
    }

    [Fact]
    public void Create_WithKey_IsSealedWithTagOverhead()
    {
        using var p = PacketProtection.Create(Key, 1, 1);
        using var insecure = PacketProtection.Create(null, 1, 1);

        Assert.True(p.Sealed);
        Assert.Equal(PacketHeader.Size + PacketProtection.TagSize, p.Overhead);
        Assert.False(insecure.Sealed);
        Assert.Equal(PacketHeader.Size, insecure.Overhead);
    }

    [Fact]
    public void SealOpen_Insecure_PassesBodyThrough()
    {
        var body = Plaintext(40);
        var datagram = new byte[PacketHeader.Size + body.Length];
        body.CopyTo(datagram, PacketHeader.Size);
        using var p = PacketProtection.Create(null, Sender, Epoch);

        Assert.Equal(datagram.Length, p.Seal(datagram, body.Length));
        Assert.Equal(body.Length, p.Open(datagram));
        Assert.Equal(body, datagram[PacketHeader.Size..]);
    }

    [Fact]
    public void Open_WrongClusterKey_ReturnsMinusOne()
    {
        Assert.Equal(-1, Open(Sealed(Plaintext(64)), key: ClusterKey.Generate()));
    }

    [Fact]
    public void Open_KeyOfOtherSenderOrEpoch_ReturnsMinusOne()
    {
        Assert.Equal(-1, Open(Sealed(Plaintext(64)), sender: Sender + 1));
        Assert.Equal(-1, Open(Sealed(Plaintext(64)), epoch: Epoch + 1));
    }

    [Fact]
    public void Open_AnySingleFlippedBit_ReturnsMinusOne()
    {
        var original = Sealed(Plaintext(48));
        int failures = 0;
        for (int bit = 0; bit < original.Length * 8; bit++)
        {
            var copy = (byte[])original.Clone();
            copy[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.True(Open(copy) == -1, $"bit {bit} (byte {bit / 8}) flipped and still authenticated");
            failures++;
        }

        Assert.Equal(original.Length * 8, failures);
        Assert.Equal(48, Open(original));
    }

    [Fact]
    public void Open_EveryTruncation_ReturnsMinusOne()
    {
        var original = Sealed(Plaintext(32));
        for (int length = 0; length < original.Length; length++)
        {
            Assert.True(Open(original[..length]) == -1, $"truncated to {length} bytes and still authenticated");
        }
    }

    [Fact]
    public void Open_ExtraTrailingByte_ReturnsMinusOne()
    {
        var original = Sealed(Plaintext(32));

        Assert.Equal(-1, Open([.. original, 0]));
    }

    [Fact]
    public void Seal_SameBodyDifferentSequence_DifferentCiphertext()
    {
        var body = Plaintext(32);

        var a = Sealed(body, sequence: 1);
        var b = Sealed(body, sequence: 2);

        Assert.NotEqual(a[PacketHeader.Size..], b[PacketHeader.Size..]);
    }
}
