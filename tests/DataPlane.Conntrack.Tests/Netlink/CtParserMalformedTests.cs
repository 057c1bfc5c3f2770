namespace ClusterSync.Plugins.Conntrack.Tests.Netlink;

/// <summary>Truncated and corrupted messages: counted as malformed by the caller, never an exception.</summary>
public sealed class CtParserMalformedTests
{
    /// <summary>Walks a buffer as the source does: (messages parsed, messages or buffers malformed).</summary>
    private static (int Parsed, int Malformed) Walk(ReadOnlySpan<byte> buffer)
    {
        int parsed = 0, malformed = 0;
        var reader = new NetlinkReader(buffer);
        while (reader.Next(out var m))
        {
            if (m.Type is Nl.CtNew or Nl.CtDelete)
            {
                if (CtParser.TryParse(m, out var r))
                {
                    parsed++;
                    _ = ConntrackMapping.TryGetKey(r, out _);
                }
                else
                {
                    malformed++;
                }
            }
        }

        return (parsed, malformed + (reader.Malformed ? 1 : 0));
    }

    public static TheoryData<int> EventIndexes() => [.. Enumerable.Range(0, 19)];

    [Theory]
    [MemberData(nameof(EventIndexes))]
    public void TryParse_EveryTruncationOfAKernelEvent_MalformedNeverThrows(int index)
    {
        var bytes = Fixtures.Sources("kernel-events.txt", "event").ElementAt(index);
        Assert.Equal((1, 0), Walk(bytes));
        for (int length = 1; length < bytes.Length; length++)
        {
            // The datagram cut short: the header's length now runs past the end.
            Assert.Equal((0, 1), Walk(bytes.AsSpan(0, length)));

            // The header says the shorter length too: attributes run past the message's end.
            var cut = bytes.AsSpan(0, length).ToArray();
            if (length >= Nl.HeaderLength)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(cut, (uint)length);
                var (parsed, malformed) = Walk(cut);
                Assert.Equal(1, parsed + malformed);
            }
        }
    }

    [Fact]
    public void TryParse_CorruptedAttributeLengths_Malformed()
    {
        var bytes = Fixtures.Sources("kernel-events.txt", "event").First();
        int first = Nl.HeaderLength + Nl.NfGenLength;   // CTA_TUPLE_ORIG's nla_len
        foreach (ushort bad in new ushort[] { 0, 1, 3, 0xFFFF, (ushort)(bytes.Length - first + 1) })
        {
            var copy = bytes.ToArray();
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(first), bad);
            Assert.Equal((0, 1), Walk(copy));
        }
    }

    [Fact]
    public void TryParse_WrongValueSizes_Malformed()
    {
        // A CT_NEW with CTA_STATUS of 2 bytes, then one with a 3-byte IPv4 address.
        var buffer = new byte[256];
        var w = new NetlinkWriter(buffer);
        w.BeginMessage(Nl.CtNew, 0, 1, 2);
        w.PutBe16(Cta.Status, 1);
        w.EndMessage();
        Assert.Equal((0, 1), Walk(w.Written));

        w = new NetlinkWriter(buffer);
        w.BeginMessage(Nl.CtNew, 0, 1, 2);
        int t = w.BeginNest(Cta.TupleOrig);
        int ip = w.BeginNest(Cta.TupleIp);
        w.PutBytes(Cta.IpV4Src, [1, 2, 3]);
        w.EndNest(ip);
        w.EndNest(t);
        w.EndMessage();
        Assert.Equal((0, 1), Walk(w.Written));
    }

    [Fact]
    public void TryParse_HeaderShorterThanHeader_ReaderStops()
    {
        var bytes = new byte[32];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, 8);
        Assert.Equal((0, 1), Walk(bytes));
        Assert.Equal((0, 1), Walk(bytes.AsSpan(0, 10)));
    }

    [Fact]
    public void TryParse_NoNfgenHeader_Malformed()
    {
        var bytes = new byte[Nl.HeaderLength + 2];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)bytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), Nl.CtNew);
        Assert.Equal((0, 1), Walk(bytes));
    }

    [Fact]
    public void TryGetKey_UnknownOrUntrackableProtocols_Unmappable()
    {
        foreach (byte proto in new byte[] { 132, 33, 47 })
        {
            var r = new CtRecord { HasOriginal = true, Original = CtTuple.Create(4, 0, CtTuple.V4MappedLow | 1, 0, CtTuple.V4MappedLow | 2, proto, 1, 2) };
            Assert.False(ConntrackMapping.TryGetKey(r, out _));
        }

        // ESP (generic tracker, no ports) is carried.
        var esp = new CtRecord { HasOriginal = true, Original = CtTuple.Create(4, 0, CtTuple.V4MappedLow | 1, 0, CtTuple.V4MappedLow | 2, 50, 0, 0) };
        Assert.True(ConntrackMapping.TryGetKey(esp, out var key));
        Assert.Equal(50, key.Protocol);

        // TCP without ports, a family that is neither 4 nor 6, no original tuple at all.
        var noPorts = new CtRecord { HasOriginal = true, Original = CtTuple.Create(4, 0, 1, 0, 2, 6, 1, 2) };
        noPorts.Original.HasPorts = false;
        Assert.False(ConntrackMapping.TryGetKey(noPorts, out _));
        Assert.False(ConntrackMapping.TryGetKey(default, out _));
    }
}
