namespace ClusterSync.Core.Tests.Protocol;

public class RecordCodecTests
{
    public static TheoryData<ConnectionEventKind, bool, bool, bool> AllShapes()
    {
        var data = new TheoryData<ConnectionEventKind, bool, bool, bool>();
        foreach (var kind in new[] { ConnectionEventKind.New, ConnectionEventKind.Update, ConnectionEventKind.Destroy })
        {
            foreach (bool v6 in new[] { false, true })
            {
                foreach (bool nat in new[] { false, true })
                {
                    foreach (bool counters in new[] { false, true })
                    {
                        data.Add(kind, v6, nat, counters);
                    }
                }
            }
        }

        return data;
    }

    public static TheoryData<bool, bool, bool> LiveShapes()
    {
        var data = new TheoryData<bool, bool, bool>();
        foreach (bool v6 in new[] { false, true })
        {
            foreach (bool nat in new[] { false, true })
            {
                foreach (bool counters in new[] { false, true })
                {
                    data.Add(v6, nat, counters);
                }
            }
        }

        return data;
    }

    private static byte[] Encode(in ConnectionEvent e)
    {
        var buffer = new byte[RecordCodec.MaxRecordSize];
        int n = RecordCodec.Write(buffer, e);
        Assert.True(n > 0);
        return buffer[..n];
    }

    private static int AddressSize(bool v6) => v6 ? 16 : 4;

    private static int VersionOffset(bool v6) => 10 + (2 * AddressSize(v6));

    private static int StatusOffset(bool v6) => VersionOffset(v6) + 8;

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void WriteTryRead_RoundTrip_PreservesRecord(ConnectionEventKind kind, bool v6, bool nat, bool counters)
    {
        var original = TestEvents.Make(kind, v6, nat, counters);
        var bytes = Encode(original);

        int consumed = RecordCodec.TryRead(bytes, out var decoded);

        Assert.Equal(bytes.Length, consumed);
        Assert.Equal(kind, decoded.Kind);
        Assert.Equal(original.Key, decoded.Key);
        Assert.Equal(v6, decoded.Key.IsIPv6);
        Assert.Equal(original.Entry.Version, decoded.Entry.Version);
        if (kind == ConnectionEventKind.Destroy)
        {
            Assert.False(decoded.HasCounters);
            Assert.Equal(ProtocolState.None, decoded.Entry.State);
            return;
        }

        Assert.True(original.Entry.SameState(decoded.Entry));
        Assert.Equal(original.Entry.Reply, decoded.Entry.Reply);
        Assert.Equal(counters, decoded.HasCounters);
        Assert.Equal(counters ? original.Counters : default, decoded.Counters);
    }

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void Measure_AnyRecord_EqualsBytesWritten(ConnectionEventKind kind, bool v6, bool nat, bool counters)
    {
        var e = TestEvents.Make(kind, v6, nat, counters);
        var buffer = new byte[RecordCodec.MaxRecordSize + 16];

        int written = RecordCodec.Write(buffer, e);

        Assert.Equal(RecordCodec.Measure(e), written);
        Assert.True(written <= RecordCodec.MaxRecordSize);
    }

    [Fact]
    public void Measure_LargestShape_EqualsMaxRecordSize()
    {
        var e = TestEvents.Make(ConnectionEventKind.New, v6: true, nat: true, counters: true);
        e.Entry.Mark = 0xDEAD_BEEF;
        e.Entry.Master = TestEvents.V6(sourcePort: 40001, destinationPort: 21);

        Assert.Equal(RecordCodec.MaxRecordSize, RecordCodec.Measure(e));
    }

    [Fact]
    public void Write_Destroy_OmitsReplyAndCounters()
    {
        var plain = TestEvents.Make(ConnectionEventKind.Destroy, v6: false, nat: false, counters: false);
        var loaded = TestEvents.Make(ConnectionEventKind.Destroy, v6: false, nat: true, counters: true);

        var a = Encode(plain);
        var b = Encode(loaded);

        Assert.Equal(a, b);
        Assert.Equal(10 + 8 + 8, a.Length);
    }

    [Fact]
    public void Write_NoNat_OmitsReplyTuple()
    {
        var e = TestEvents.Make(ConnectionEventKind.New, v6: false, nat: false, counters: false);

        var bytes = Encode(e);

        Assert.Equal(0, bytes[1] & 2);
        Assert.Equal(10 + 8 + 8 + 24, bytes.Length);
    }

    [Fact]
    public void Write_InternalStatusBits_AreNotWritten()
    {
        var e = TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: false, counters: false);
        e.Entry.Status |= ConnectionStatus.Announced | ConnectionStatus.Tombstone;

        var bytes = Encode(e);

        Assert.True(RecordCodec.TryRead(bytes, out var decoded) > 0);
        Assert.Equal(e.Entry.Status & ConnectionStatus.WireMask, decoded.Entry.Status);
    }

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void Write_SpanOneByteTooSmall_ReturnsZero(ConnectionEventKind kind, bool v6, bool nat, bool counters)
    {
        var e = TestEvents.Make(kind, v6, nat, counters);
        int size = RecordCodec.Measure(e);

        Assert.Equal(0, RecordCodec.Write(new byte[size - 1], e));
        Assert.Equal(0, RecordCodec.Write(Span<byte>.Empty, e));
        Assert.Equal(size, RecordCodec.Write(new byte[size], e));
    }

    [Theory]
    [MemberData(nameof(AllShapes))]
    public void TryRead_EveryTruncatedPrefix_ReturnsZero(ConnectionEventKind kind, bool v6, bool nat, bool counters)
    {
        var bytes = Encode(TestEvents.Make(kind, v6, nat, counters));

        for (int length = 0; length < bytes.Length; length++)
        {
            Assert.True(RecordCodec.TryRead(bytes.AsSpan(0, length), out _) == 0, $"prefix of {length}/{bytes.Length} bytes was accepted");
        }
    }

    [Fact]
    public void TryRead_TrailingBytes_ConsumesOnlyTheRecord()
    {
        var first = Encode(TestEvents.Make(ConnectionEventKind.New, v6: true, nat: true, counters: true));
        var second = Encode(TestEvents.Make(ConnectionEventKind.Destroy, v6: false, nat: false, counters: false));
        var both = first.Concat(second).ToArray();

        int n1 = RecordCodec.TryRead(both, out var r1);
        int n2 = RecordCodec.TryRead(both.AsSpan(n1), out var r2);

        Assert.Equal(first.Length, n1);
        Assert.Equal(second.Length, n2);
        Assert.Equal(ConnectionEventKind.New, r1.Kind);
        Assert.Equal(ConnectionEventKind.Destroy, r2.Kind);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [InlineData(255)]
    public void TryRead_UnknownOp_ReturnsZero(byte op)
    {
        foreach (var kind in new[] { ConnectionEventKind.New, ConnectionEventKind.Destroy })
        {
            var bytes = Encode(TestEvents.Make(kind, v6: false, nat: false, counters: false));
            bytes[0] = op;

            Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(128)]
    public void TryRead_UnknownFlagBit_ReturnsZero(byte flag)
    {
        foreach (var kind in new[] { ConnectionEventKind.New, ConnectionEventKind.Update, ConnectionEventKind.Destroy })
        {
            var bytes = Encode(TestEvents.Make(kind, v6: false, nat: false, counters: false));
            Assert.True(RecordCodec.TryRead(bytes, out _) > 0);
            bytes[1] |= flag;

            Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
        }
    }

    [Theory]
    [InlineData(2)] // reply tuple
    [InlineData(4)] // counters
    [InlineData(6)] // both
    public void TryRead_DestroyWithReplyOrCountersFlag_ReturnsZero(byte flag)
    {
        var valid = Encode(TestEvents.Make(ConnectionEventKind.Destroy, v6: false, nat: false, counters: false));
        // Enough trailing bytes that length is not the reason for the rejection.
        var bytes = valid.Concat(new byte[RecordCodec.MaxRecordSize]).ToArray();
        bytes[1] |= flag;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    public void TryRead_DestroyWithNonzeroState_ReturnsZero(byte state)
    {
        var bytes = Encode(TestEvents.Make(ConnectionEventKind.Destroy, v6: true, nat: false, counters: false));
        bytes[3] = state;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Theory]
    [InlineData(10)]
    [InlineData(15)]
    [InlineData(18)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(47)]
    [InlineData(49)]
    [InlineData(255)]
    public void TryRead_InvalidProtocolState_ReturnsZero(byte state)
    {
        var bytes = Encode(TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: true, counters: false));
        bytes[3] = state;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Fact]
    public void TryRead_EveryDefinedProtocolState_IsAccepted()
    {
        foreach (var state in Enum.GetValues<ProtocolState>())
        {
            var e = TestEvents.Make(ConnectionEventKind.New, v6: false, nat: false, counters: false);
            e.Entry.State = state;
            var bytes = Encode(e);

            Assert.Equal(bytes.Length, RecordCodec.TryRead(bytes, out var decoded));
            Assert.Equal(state, decoded.Entry.State);
        }
    }

    [Theory]
    [InlineData(ConnectionEventKind.New, false)]
    [InlineData(ConnectionEventKind.Update, true)]
    [InlineData(ConnectionEventKind.Destroy, false)]
    [InlineData(ConnectionEventKind.Destroy, true)]
    public void TryRead_VersionZero_ReturnsZero(ConnectionEventKind kind, bool v6)
    {
        var bytes = Encode(TestEvents.Make(kind, v6, nat: false, counters: false));
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(VersionOffset(v6)), 0);

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Theory]
    [InlineData(ConnectionEventKind.New, false)]
    [InlineData(ConnectionEventKind.New, true)]
    [InlineData(ConnectionEventKind.Update, false)]
    [InlineData(ConnectionEventKind.Update, true)]
    public void TryRead_OwnerZero_ReturnsZero(ConnectionEventKind kind, bool v6)
    {
        var bytes = Encode(TestEvents.Make(kind, v6, nat: true, counters: true));
        bytes[StatusOffset(v6) + 3] = 0;

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Theory]
    [InlineData(14)]
    [InlineData(15)]
    public void TryRead_StatusWithNonWireBit_ReturnsZero(int bit)
    {
        var bytes = Encode(TestEvents.Make(ConnectionEventKind.New, v6: false, nat: false, counters: false));
        int o = StatusOffset(false);
        ushort status = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(o));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(o), (ushort)(status | (1 << bit)));

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public void TryRead_CreatedNegative_ReturnsZero(long created)
    {
        var bytes = Encode(TestEvents.Make(ConnectionEventKind.New, v6: true, nat: false, counters: false));
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(StatusOffset(true) + 8), created);

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Fact]
    public void TryRead_UpdatedBeforeCreated_ReturnsZero()
    {
        var e = TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: false, counters: false);
        var bytes = Encode(e);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(StatusOffset(false) + 16), e.Entry.CreatedMs - 1);

        Assert.Equal(0, RecordCodec.TryRead(bytes, out _));
    }

    [Fact]
    public void Write_UpdatedBeforeCreated_WritesCreatedAsUpdatedSoTheRecordReads()
    {
        // Simulator seeds 119 and 53: an entry updated under a wall clock behind its creator's.
        var e = TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: false, counters: false);
        e.Entry.UpdatedMs = e.Entry.CreatedMs - 15_500;
        var bytes = Encode(e);

        Assert.Equal(bytes.Length, RecordCodec.TryRead(bytes, out var read));
        Assert.Equal(e.Entry.CreatedMs, read.Entry.UpdatedMs);
    }

    [Fact]
    public void TryRead_UpdatedEqualsCreated_IsAccepted()
    {
        var e = TestEvents.Make(ConnectionEventKind.Update, v6: false, nat: false, counters: false);
        e.Entry.UpdatedMs = e.Entry.CreatedMs;
        var bytes = Encode(e);

        Assert.Equal(bytes.Length, RecordCodec.TryRead(bytes, out _));
    }
}
