namespace ClusterSync.Core.Tests.Protocol;

/// <summary>The optional extension block of a record: the conntrack mark and the master of a related connection.</summary>
public class RecordExtensionTests
{
    // An IPv4 update without NAT or counters, as version 1 wrote it before the extension existed (50 bytes).
    private const string OldFormatV4Update =
        "02000603" + "0007" + "9c40" + "0050" + "0a000001" + "0a000002" + "0000123456789abc"
        + "001e" + "02" + "09" + "0000012c" + "000001a1ee565e00" + "000001a1ee5663dc";

    // The source and destination of TestEvents.V6 (the IPv6 master in the known answers below).
    private const string V6MasterAddresses = "20010db800000000" + "0000000000000001" + "20010db800000000" + "abcd000000000002";

    public static TheoryData<bool, bool, bool, bool> Shapes()
    {
        var data = new TheoryData<bool, bool, bool, bool>();
        foreach (bool v6 in new[] { false, true })
        {
            foreach (bool masterV6 in new[] { false, true })
            {
                foreach (bool mark in new[] { false, true })
                {
                    foreach (bool master in new[] { false, true })
                    {
                        if (mark || master)
                        {
                            data.Add(v6, masterV6, mark, master);
                        }
                    }
                }
            }
        }

        return data;
    }

    private static ConnectionEvent Related(bool v6, bool masterV6, bool mark, bool master, bool counters = true)
    {
        var e = TestEvents.Make(ConnectionEventKind.New, v6, nat: true, counters);
        if (mark)
        {
            e.Entry.Mark = 0x8000_0042;
        }

        if (master)
        {
            e.Entry.Master = masterV6 ? TestEvents.V6(sourcePort: 40100, destinationPort: 21, zone: 3) : TestEvents.V4(sourcePort: 40100, destinationPort: 21, zone: 7);
        }

        return e;
    }

    private static byte[] Encode(in ConnectionEvent e)
    {
        var buffer = new byte[RecordCodec.MaxRecordSize];
        int n = RecordCodec.Write(buffer, e);
        Assert.True(n > 0);
        Assert.Equal(RecordCodec.Measure(e), n);
        return buffer[..n];
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void WriteTryRead_MarkAndMaster_RoundTrip(bool v6, bool masterV6, bool mark, bool master)
    {
        var original = Related(v6, masterV6, mark, master);
        var bytes = Encode(original);

        int consumed = RecordCodec.TryRead(bytes, out var decoded, out bool badExtension);

        Assert.Equal(bytes.Length, consumed);
        Assert.False(badExtension);
        Assert.True(original.Entry.SameState(decoded.Entry));
        Assert.Equal(original.Entry.Mark, decoded.Entry.Mark);
        Assert.Equal(original.Entry.Master, decoded.Entry.Master);
        Assert.Equal(master, decoded.Entry.HasMaster);
        Assert.Equal(original.Counters, decoded.Counters);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Write_NoMarkNoMaster_IsTheOldFormatByteForByte(bool v6)
    {
        var plain = TestEvents.Make(ConnectionEventKind.Update, v6, nat: false, counters: false);
        var bytes = Encode(plain);

        Assert.Equal(0, bytes[1] & 8);
        Assert.Equal(v6 ? 74 : 50, bytes.Length);
        if (!v6)
        {
            Assert.Equal(OldFormatV4Update, Convert.ToHexStringLower(bytes));
        }
    }

    [Fact]
    public void TryRead_OldFormatRecord_HasNoMarkAndNoMaster()
    {
        var bytes = Convert.FromHexString(OldFormatV4Update);

        int consumed = RecordCodec.TryRead(bytes, out var decoded, out bool badExtension);

        Assert.Equal(bytes.Length, consumed);
        Assert.False(badExtension);
        Assert.Equal(0u, decoded.Entry.Mark);
        Assert.False(decoded.Entry.HasMaster);
        Assert.Equal(ConnectionEventKind.Update, decoded.Kind);
    }

    [Fact]
    public void Write_DestroyOfRelatedEntry_CarriesNoExtension()
    {
        var e = Related(v6: false, masterV6: false, mark: true, master: true);
        e.Kind = ConnectionEventKind.Destroy;

        var bytes = Encode(e);

        Assert.Equal(26, bytes.Length);
        Assert.Equal(0, bytes[1] & 8);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TryRead_EveryTruncatedExtension_ReturnsZeroAsBadExtension(bool v6, bool masterV6, bool mark, bool master)
    {
        var bytes = Encode(Related(v6, masterV6, mark, master, counters: false));
        int ext = RecordCodec.ExtensionSize(Related(v6, masterV6, mark, master).Entry);
        for (int cut = bytes.Length - ext; cut < bytes.Length; cut++)
        {
            Assert.Equal(0, RecordCodec.TryRead(bytes.AsSpan(0, cut), out var r, out bool badExtension));
            Assert.True(badExtension, $"cut at {cut}");
            Assert.Equal(default, r.Key);
        }
    }

    public static TheoryData<string, int, byte> Forgeries() => new()
    {
        { "length too long", 0, 0xFF },
        { "length too short", 0, 2 },
        { "length zero", 0, 0 },
        { "another version", 1, 2 },
        { "unknown field bit", 2, 7 },
        { "no field", 2, 0 },
        { "zero mark", 3, 0 },
        { "master family 5", 7, 5 },
        { "master family 0", 7, 0 },
    };

    [Theory]
    [MemberData(nameof(Forgeries))]
    public void TryRead_ForgedExtension_ReturnsZeroAsBadExtension(string what, int offset, byte value)
    {
        var e = Related(v6: false, masterV6: false, mark: true, master: true, counters: false);
        var bytes = Encode(e);
        int ext = bytes.Length - RecordCodec.ExtensionSize(e.Entry);
        if (what == "zero mark")
        {
            bytes.AsSpan(ext + 3, 4).Clear();
        }
        else
        {
            bytes[ext + offset] = value;
        }

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _, out bool badExtension));
        Assert.True(badExtension, what);
    }

    [Fact]
    public void TryRead_MasterEqualToItsOwnKey_ReturnsZeroAsBadExtension()
    {
        var e = Related(v6: false, masterV6: false, mark: false, master: false, counters: false);
        e.Entry.Master = e.Key;

        Assert.Equal(0, RecordCodec.TryRead(Encode(e), out _, out bool badExtension));
        Assert.True(badExtension);
    }

    [Fact]
    public void TryRead_ExtensionFlagOnDestroy_ReturnsZero()
    {
        var bytes = Encode(TestEvents.Make(ConnectionEventKind.Destroy, v6: false, nat: false, counters: false));
        bytes[1] |= 8;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Fact]
    public void ReadMany_RecordsWithAndWithoutExtension_ReadsAllInOrder()
    {
        var a = Related(v6: false, masterV6: false, mark: true, master: true);
        var b = TestEvents.Make(ConnectionEventKind.Update, v6: true, nat: false, counters: false);
        var c = Related(v6: true, masterV6: true, mark: false, master: true, counters: false);
        var bytes = Encode(a).Concat(Encode(b)).Concat(Encode(c)).ToArray();
        ReadOnlySpan<byte> span = bytes;
        var staging = new ConnectionEvent[4];

        int n = RecordCodec.ReadMany(ref span, staging);

        Assert.Equal(3, n);
        Assert.Equal(0, span.Length);
        Assert.Equal(a.Entry.Master, staging[0].Entry.Master);
        Assert.Equal(a.Entry.Mark, staging[0].Entry.Mark);
        Assert.False(staging[1].Entry.HasMaster);
        Assert.Equal(c.Entry.Master, staging[2].Entry.Master);
    }

    [Theory]
    [InlineData(true, false, "16" + "03" + "80000042" + "04" + "06" + "0007" + "9ca4" + "0015" + "0a000001" + "0a000002")]
    [InlineData(true, true, "2e" + "03" + "80000042" + "06" + "06" + "0003" + "9ca4" + "0015" + V6MasterAddresses)]
    [InlineData(false, true, "2a" + "02" + "06" + "06" + "0003" + "9ca4" + "0015" + V6MasterAddresses)]
    public void Write_ExtensionBlock_KnownBytes(bool mark, bool masterV6, string lengthFieldsAndValues)
    {
        var e = Related(v6: false, masterV6, mark, master: true, counters: false);
        var bytes = Encode(e);
        int ext = RecordCodec.ExtensionSize(e.Entry);

        Assert.Equal(8, bytes[1] & 8);
        string block = Convert.ToHexStringLower(bytes, bytes.Length - ext, ext);
        Assert.Equal(lengthFieldsAndValues[..2] + "01" + lengthFieldsAndValues[2..], block); // version 1 after the length
        Assert.Equal(ext, RecordCodec.MaxExtensionSize - (masterV6 ? 0 : 24) - (mark ? 0 : 4));
    }

    [Fact]
    public void Write_MarkOnly_KnownBytes()
    {
        var e = Related(v6: false, masterV6: false, mark: true, master: false, counters: false);

        var bytes = Encode(e);

        Assert.Equal(7, RecordCodec.ExtensionSize(e.Entry));
        Assert.Equal("06" + "01" + "01" + "80000042", Convert.ToHexStringLower(bytes, bytes.Length - 7, 7));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Write_ExtensionRecordInASpanOneByteTooSmall_ReturnsZero(bool v6, bool masterV6, bool mark, bool master)
    {
        var e = Related(v6, masterV6, mark, master);
        int size = RecordCodec.Measure(e);

        Assert.Equal(0, RecordCodec.Write(new byte[size - 1], e));
        Assert.Equal(size, RecordCodec.Write(new byte[size], e));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TryRead_ExtensionLengthShorterThanItsFields_ReturnsZero(bool v6, bool masterV6, bool mark, bool master)
    {
        var e = Related(v6, masterV6, mark, master, counters: false);
        var bytes = Encode(e);
        int start = bytes.Length - RecordCodec.ExtensionSize(e.Entry);
        for (int length = 0; length < bytes.Length - start - 1; length++)
        {
            bytes[start] = (byte)length;

            // The record ending where the forged length says: nothing may be read past it.
            Assert.Equal(0, RecordCodec.TryRead(bytes.AsSpan(0, start + length + 1), out _, out bool cutBad));
            Assert.True(cutBad, $"length {length}, cut");

            // The whole block still there: the fields run past the length.
            Assert.Equal(0, RecordCodec.TryRead(bytes, out _, out bool wholeBad));
            Assert.True(wholeBad, $"length {length}, whole");
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TryRead_ExtensionLengthLongerThanItsFields_ReturnsZero(bool v6, bool masterV6, bool mark, bool master)
    {
        var e = Related(v6, masterV6, mark, master, counters: false);
        var bytes = Encode(e).Append((byte)0x5A).ToArray();
        int start = bytes.Length - 1 - RecordCodec.ExtensionSize(e.Entry);
        bytes[start]++;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _, out bool badExtension));
        Assert.True(badExtension);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TryRead_ExtensionFollowedByTrailingBytes_ConsumesOnlyTheRecord(bool v6, bool masterV6, bool mark, bool master)
    {
        var e = Related(v6, masterV6, mark, master);
        var record = Encode(e);
        var bytes = record.Concat(Enumerable.Repeat((byte)0xA5, 48)).ToArray();

        Assert.Equal(record.Length, RecordCodec.TryRead(bytes, out var decoded, out bool badExtension));
        Assert.False(badExtension);
        Assert.Equal(e.Entry.Mark, decoded.Entry.Mark);
        Assert.Equal(e.Entry.Master, decoded.Entry.Master);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(16)]
    public void TryRead_MasterOfUnknownFamilyWithALengthForNoAddress_ReturnsZero(byte family)
    {
        // A master block of only its 8 head bytes (the length an unknown family with no address would have),
        // followed by bytes an address reader could read: refused for the family alone.
        var e = Related(v6: false, masterV6: false, mark: false, master: true, counters: false);
        var record = Encode(e);
        int start = record.Length - RecordCodec.ExtensionSize(e.Entry);
        var bytes = record.Concat(new byte[16]).ToArray();
        bytes[start] = 10;
        bytes[start + 3] = family;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out var r, out bool badExtension));
        Assert.True(badExtension);
        Assert.Equal(default, r.Key);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryRead_MasterEqualToItsOwnKeyWithMark_ReturnsZero(bool v6)
    {
        var e = Related(v6, masterV6: v6, mark: true, master: false, counters: false);
        e.Entry.Master = e.Key;

        Assert.Equal(0, RecordCodec.TryRead(Encode(e), out _, out bool badExtension));
        Assert.True(badExtension);
    }

    [Fact]
    public void TryRead_MasterOfOtherFamilyThanTheRecord_RoundTrips()
    {
        var e = Related(v6: true, masterV6: false, mark: false, master: true, counters: false);
        var bytes = Encode(e);

        Assert.Equal(bytes.Length, RecordCodec.TryRead(bytes, out var decoded));
        Assert.Equal(4, decoded.Entry.Master.Family);
        Assert.Equal(TestEvents.V4(sourcePort: 40100, destinationPort: 21, zone: 7), decoded.Entry.Master);
        Assert.True(decoded.Key.IsIPv6);
    }

    [Fact]
    public void ExtensionSize_EachField_ExactBytes()
    {
        var e = default(ConnectionEntry);
        Assert.Equal(0, RecordCodec.ExtensionSize(e));
        e.Mark = 1;
        Assert.Equal(7, RecordCodec.ExtensionSize(e));
        e.Master = TestEvents.V4();
        Assert.Equal(23, RecordCodec.ExtensionSize(e));
        e.Master = TestEvents.V6();
        Assert.Equal(47, RecordCodec.ExtensionSize(e));
        e.Mark = 0;
        Assert.Equal(43, RecordCodec.ExtensionSize(e));
        e.Master = TestEvents.V4();
        Assert.Equal(19, RecordCodec.ExtensionSize(e));
        Assert.Equal(47, RecordCodec.MaxExtensionSize);
        Assert.Equal(189, RecordCodec.MaxRecordSize);
    }
}
