namespace ClusterSync.Core.Tests.Security;

/// <summary>
/// Known answers for key derivation, nonce construction and sealing, from the spec in Protocol/README.md and
/// FullSync/README.md. The expected bytes were computed independently of this code base, with Python's
/// <c>cryptography</c> 48 (HKDF, AESGCM) and an HKDF written out by hand from RFC 5869 with <c>hmac</c>/<c>hashlib</c>:
/// <code>
/// K = bytes(range(32)); info = b"delta" + pack(">HQ", 7, 0x0123456789ABCDEF)
/// key = HKDF(SHA256, 32, salt=b"ClusterSync delta sync v1", info=info).derive(K)
/// header = pack(">HBBHHQQ", 0x4353, 1, 1, 7, 1, 0x0123456789ABCDEF, 0x1122334455667788)
/// nonce = pack(">H", 7) + pack(">H", 0xCDEF) + pack(">Q", 0x1122334455667788)
/// sealed = header + AESGCM(key).encrypt(nonce, b"ClusterSync known-answer body", header)
/// </code>
/// A change to the salt, the label, the info layout, the nonce (sender, epoch or sequence left out) or the
/// associated data changes these bytes.
/// </summary>
public sealed class KnownAnswerTests
{
    private static readonly byte[] s_clusterKey = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private const ushort Sender = 7;
    private const ulong Epoch = 0x0123_4567_89AB_CDEF;
    private const ulong Sequence = 0x1122_3344_5566_7788;

    [Fact]
    public void DeriveSenderKey_FixedClusterKeySenderEpoch_MatchesRfc5869Hkdf()
    {
        var key = new ClusterKey(s_clusterKey).DeriveSenderKey(Sender, Epoch);

        Assert.Equal("71fa0780806b5d4ea287a966122b56d3fd77224ed6858c135de5614124581a81", Convert.ToHexStringLower(key));
    }

    [Fact]
    public void Seal_FixedKeyHeaderAndBody_MatchesAesGcmWithSpecNonce()
    {
        var header = new PacketHeader(MessageType.Data, Sender, HeaderFlags.Sealed, Epoch, Sequence);
        var body = Encoding.ASCII.GetBytes("ClusterSync known-answer body");
        var datagram = new byte[PacketHeader.Size + body.Length + PacketProtection.TagSize];
        header.Write(datagram);
        Assert.Equal("43530101000700010123456789abcdef1122334455667788", Convert.ToHexStringLower(datagram.AsSpan(0, PacketHeader.Size)));
        body.CopyTo(datagram, PacketHeader.Size);
        using var sealer = PacketProtection.Create(new ClusterKey(s_clusterKey), Sender, Epoch);

        int length = sealer.Seal(datagram, body.Length);

        Assert.Equal(datagram.Length, length);
        Assert.Equal(
            "43530101000700010123456789abcdef1122334455667788" +
            "17d22d960482036ad249c431dc5423b5dfdda3c94547bdbddfd49dd6fd" + // ciphertext
            "48fb78ddc79a28736406f055ea50493f",                               // tag
            Convert.ToHexStringLower(datagram));

        using var opener = PacketProtection.Create(new ClusterKey(s_clusterKey), Sender, Epoch);
        Assert.Equal(body.Length, opener.Open(datagram));
        Assert.Equal(body, datagram.AsSpan(PacketHeader.Size, body.Length).ToArray());
    }

    [Theory]
    [InlineData(4)]  // sender
    [InlineData(14)] // epoch, low 16 bits (in the nonce)
    [InlineData(15)]
    [InlineData(16)] // sequence, each byte is in the nonce
    [InlineData(23)]
    [InlineData(2)]  // version: only in the associated data
    public void Open_KnownAnswerWithOneHeaderByteChanged_Rejected(int offset)
    {
        var sealedBytes = Convert.FromHexString(
            "43530101000700010123456789abcdef1122334455667788" +
            "17d22d960482036ad249c431dc5423b5dfdda3c94547bdbddfd49dd6fd48fb78ddc79a28736406f055ea50493f");
        sealedBytes[offset] ^= 0x01;
        using var opener = PacketProtection.Create(new ClusterKey(s_clusterKey), Sender, Epoch);

        Assert.Equal(-1, opener.Open(sealedBytes));
    }

    [Fact]
    public void DeriveFullSyncKeys_FixedInfo_MatchesHkdf()
    {
        // info = "fullsync" ‖ client 2 ‖ server 1 ‖ client nonce A0..BF ‖ server nonce C0..DF
        var info = new byte[8 + 2 + 64];
        "fullsync"u8.CopyTo(info);
        info[8] = 2;
        info[9] = 1;
        for (int i = 0; i < 32; i++)
        {
            info[10 + i] = (byte)(0xA0 + i);
            info[42 + i] = (byte)(0xC0 + i);
        }

        var output = new byte[96];
        new ClusterKey(s_clusterKey).DeriveFullSyncKeys(output, info);

        Assert.Equal(
            "ea278bab90a3b3677a791406a56af77f31f84145abe545b57821d2993e3a8315" +
            "26ab0b7125c9120cd66a39f51356b1ff59f2841ef8d45fd030083847d968acf1" +
            "8fabcaa1de04f39a9c42adf82ed057f4a5d01dcaae2fe3adda071593fea91c10",
            Convert.ToHexStringLower(output));
    }
}
