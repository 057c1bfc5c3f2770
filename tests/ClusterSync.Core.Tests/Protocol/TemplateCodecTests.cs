using ClusterSync.Templates;

namespace ClusterSync.Core.Tests.Protocol;

/// <summary>The template record (op 4): its layout, its round trip and its refusal of every invalid field (hostile input).</summary>
public class TemplateCodecTests
{
    private static ConnectionTemplate V4() => new(ConnectionKey.IPv4(0x0A00_0001, 0xC0A8_0101, 0, 80, 6, zone: 7),
        Owner: 1, ServiceClass: 2, Count: 10_000, LifetimeSeconds: 60, CreatedMs: 1_795_000_000_000, UpdatedMs: 1_795_000_001_000, Version: 0x123456789ABC);

    private static ConnectionTemplate V6() => V4() with
    {
        Key = ConnectionKey.IPv6(0x20010DB8_00000000, 1, 0x20010DB8_00000000, 2, 0, 443, 17),
    };

    private static byte[] Bytes(in ConnectionTemplate t)
    {
        var b = new byte[TemplateCodec.Measure(t)];
        Assert.Equal(b.Length, TemplateCodec.Write(b, t));
        return b;
    }

    [Fact]
    public void Write_IPv4_MatchesTheDocumentedLayout()
    {
        string hex = Convert.ToHexString(Bytes(V4())).ToLowerInvariant();
        Assert.Equal(
            "04" + "00" + "06" + "00" + "0007" + "0000" + "0050" + "0a000001" + "c0a80101" + "0000123456789abc"
            + "01" + "02" + "00002710" + "0000003c" + "000001a1ee565e00" + "000001a1ee5661e8", hex);
        Assert.Equal(52, TemplateCodec.SizeIPv4);
    }

    [Fact]
    public void WriteThenRead_IPv4AndIPv6_RoundTrip()
    {
        foreach (var t in new[] { V4(), V6() })
        {
            var b = Bytes(t);
            Assert.Equal(t.Key.IsIPv6 ? TemplateCodec.SizeIPv6 : TemplateCodec.SizeIPv4, b.Length);
            Assert.Equal(b.Length, TemplateCodec.TryRead(b, out var back));
            Assert.Equal(t, back);
        }
    }

    [Fact]
    public void Write_DestinationTooSmall_WritesNothing()
    {
        var b = new byte[TemplateCodec.SizeIPv4 - 1];
        Assert.Equal(0, TemplateCodec.Write(b, V4()));
        Assert.All(b, x => Assert.Equal(0, x));
    }

    [Fact]
    public void TryRead_EveryTruncation_IsRefused()
    {
        foreach (var t in new[] { V4(), V6() })
        {
            var b = Bytes(t);
            for (int n = 0; n < b.Length; n++)
            {
                Assert.Equal(0, TemplateCodec.TryRead(b.AsSpan(0, n), out _));
            }
        }
    }

    public static TheoryData<string, int, byte> Corruptions() => new()
    {
        { "op 1 (a connection record)", 0, 1 },
        { "op 5", 0, 5 },
        { "unknown flag", 1, 0x02 },
        { "ICMP (no ports)", 2, 1 },
        { "protocol 0", 2, 0 },
        { "nonzero state", 3, 3 },
        { "nonzero source port", 7, 1 },
        { "destination port 0 (high byte kept 0)", 9, 0 },
        { "owner 0", 26, 0 },
        { "count 0 (low byte; the others are written 0 below)", 31, 0 },
        { "lifetime above a day (high byte)", 32, 0x01 },
        { "negative creation", 36, 0x80 },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void TryRead_InvalidField_IsRefused(string what, int offset, byte value)
    {
        var b = Bytes(V4());
        if (what.StartsWith("count 0", StringComparison.Ordinal))
        {
            b[28] = b[29] = b[30] = 0;
        }

        Assert.True(TemplateCodec.TryRead(b, out _) > 0, "the unchanged record reads");
        b[offset] = value;
        Assert.Equal(0, TemplateCodec.TryRead(b, out var t));
        Assert.Equal(default, t);
    }

    [Fact]
    public void TryRead_VersionZeroLifetimeZeroOrUpdateBeforeCreation_IsRefused()
    {
        Assert.Equal(0, TemplateCodec.TryRead(Bytes(V4() with { Version = 0 }), out _));
        Assert.Equal(0, TemplateCodec.TryRead(Bytes(V4() with { LifetimeSeconds = 0 }), out _));
        var b = Bytes(V4());
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(44), 1_794_999_999_999); // updated before created
        Assert.Equal(0, TemplateCodec.TryRead(b, out _));
    }

    [Fact]
    public void TryRead_RandomAndMutatedBytes_NeverThrowsAndReadsOnlyValidTemplates()
    {
        var rng = new Random(11);
        var valid = Bytes(V6());
        for (int i = 0; i < 20_000; i++)
        {
            byte[] b;
            if (i % 2 == 0)
            {
                b = new byte[rng.Next(0, 100)];
                rng.NextBytes(b);
                if (b.Length > 0 && rng.Next(2) == 0)
                {
                    b[0] = TemplateCodec.Op;
                }
            }
            else
            {
                b = (byte[])valid.Clone();
                b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
            }

            int used = TemplateCodec.TryRead(b, out var t);
            if (used > 0)
            {
                Assert.True(t.Owner != 0 && t.Count != 0 && t.LifetimeSeconds is > 0 and <= TemplateCodec.MaxLifetimeSeconds && t.Key.SourcePort == 0);
                Assert.True(TemplateKeys.Covers(t.Key.Protocol) && t.Key.DestinationPort != 0 && t.UpdatedMs >= t.CreatedMs && t.Version != 0);
                Assert.Equal(used, TemplateCodec.Write(new byte[used], t));
            }
        }
    }

    [Fact]
    public void RecordCodec_TemplateRecord_IsNotAConnectionRecord()
    {
        Assert.Equal(0, RecordCodec.TryRead(Bytes(V4()), out _));
    }
}
