namespace ClusterSync.Plugins.Conntrack.Tests;

public sealed class ConntrackSettingsTests
{
    private static ConntrackSettings Parse(string json) => ConntrackSettings.Parse(JsonDocument.Parse(json).RootElement);

    [Fact]
    public void Parse_NullOrEmpty_Defaults()
    {
        var s = ConntrackSettings.Parse(null);
        Assert.Equal(16 << 20, s.ReceiveBufferBytes);
        Assert.Equal(256 << 10, s.BatchBytes);
        Assert.False(s.Ack);
        Assert.True(s.Events);
        Assert.Equal(0, s.ResyncSeconds);
        Assert.Equal(s, Parse("{}"));
    }

    [Fact]
    public void Parse_EverySetting_Read()
    {
        var s = Parse("""{ "receiveBufferBytes": 8388608, "batchBytes": 65536, "ack": true, "expectedConnections": 10, "events": false, "resyncSeconds": 30 }""");
        Assert.Equal(new ConntrackSettings { ReceiveBufferBytes = 8 << 20, BatchBytes = 64 << 10, Ack = true, ExpectedConnections = 10, Events = false, ResyncSeconds = 30 }, s);
    }

    [Fact]
    public void Parse_IgnoreSyncLinks_DefaultTrueAndReadable()
    {
        Assert.True(ConntrackSettings.Parse(null).IgnoreSyncLinks);
        Assert.False(Parse("""{ "ignoreSyncLinks": false }""").IgnoreSyncLinks);
        Assert.Contains("ignoreSyncLinks: expected true or false", Assert.Throws<ArgumentException>(() => Parse("""{ "ignoreSyncLinks": 1 }""")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.201.3.2", 8116, 17, true)]
    [InlineData("10.201.3.2", 8116, 6, false)]
    [InlineData("10.201.3.2", 8117, 17, false)]
    [InlineData("10.201.3.3", 8116, 17, false)]
    [InlineData("fd00:99::2", 256, 6, true)]
    public void EndpointFilter_MatchesAddressPortAndProtocolTogether(string address, int port, int protocol, bool expected)
    {
        var filter = new EndpointFilter([new(IPAddress.Parse("10.201.3.2"), 8116, 17), new(IPAddress.Parse("fd00:99::2"), 256, 6)]);
        Span<byte> b = stackalloc byte[16];
        IPAddress.Parse(address).MapToIPv6().TryWriteBytes(b, out _);

        bool matches = filter.Matches(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b[8..]), (ushort)port, (byte)protocol);

        Assert.Equal(expected, matches);
    }

    [Fact]
    public void Parse_NoIgnore_LoopbackIgnoredByDefault()
    {
        var s = ConntrackSettings.Parse(null);
        Assert.Empty(s.Ignore);
        Assert.Equal(["127.0.0.0/8", "::1/128"], s.IgnoredNetworks.Select(n => n.ToString()));
    }

    [Fact]
    public void Parse_Ignore_ExtendsLoopbackDefault()
    {
        var s = Parse("""{ "ignore": ["10.99.0.0/30", "fd00:99::/64", "192.0.2.7/32"] }""");
        Assert.Equal(["10.99.0.0/30", "fd00:99::/64", "192.0.2.7/32"], s.Ignore.Select(n => n.ToString()));
        Assert.Equal(["127.0.0.0/8", "::1/128", "10.99.0.0/30", "fd00:99::/64", "192.0.2.7/32"], s.IgnoredNetworks.Select(n => n.ToString()));
    }

    [Fact]
    public void Parse_IgnoreLoopbackFalse_OnlyTheListedNetworks()
    {
        var s = Parse("""{ "ignoreLoopback": false, "ignore": ["10.99.0.0/30"] }""");
        Assert.False(s.IgnoreLoopback);
        Assert.Equal(["10.99.0.0/30"], s.IgnoredNetworks.Select(n => n.ToString()));
        Assert.Empty(Parse("""{ "ignoreLoopback": false }""").IgnoredNetworks);
    }

    [Theory]
    [InlineData("""{ "ignoreLoopback": "no" }""", "ignoreLoopback: expected true or false")]
    [InlineData("""{ "ignore": ["10.0.0.0/24", "10.0.0.300/24"] }""", "ignore[1]: expected a CIDR")]
    [InlineData("""{ "ignore": ["10.0.0.0/24", "10.0.0.1"] }""", "ignore[1]: expected a CIDR")]
    [InlineData("""{ "ignore": ["10.0.0.1/24"] }""", "ignore[0]: expected a CIDR")]
    [InlineData("""{ "ignore": [7] }""", "ignore[0]: expected a CIDR")]
    [InlineData("""{ "ignore": "10.0.0.0/24" }""", "ignore: expected a list of CIDRs")]
    public void Parse_BadIgnore_ArgumentExceptionNamingTheEntry(string json, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => Parse(json));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.255.0.9", true)]
    [InlineData("::1", true)]
    [InlineData("10.99.0.2", true)]
    [InlineData("10.99.0.4", false)]
    [InlineData("fd00:99::17", true)]
    [InlineData("fd00:98::17", false)]
    [InlineData("10.0.1.1", false)]
    [InlineData("::2", false)]
    public void Matches_Address_InIgnoredNetworkOrNot(string address, bool expected)
    {
        var filter = new AddressFilter(Parse("""{ "ignore": ["10.99.0.0/30", "fd00:99::/64"] }""").IgnoredNetworks);
        Span<byte> b = stackalloc byte[16];
        IPAddress.Parse(address).MapToIPv6().TryWriteBytes(b, out _);
        Assert.Equal(expected, filter.Matches(System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b[8..])));
    }

    [Theory]
    [InlineData("""{ "batchBytes": 12 }""", "batchBytes: expected an integer 4096-16777216, found 12")]
    [InlineData("""{ "receiveBufferBytes": "big" }""", "receiveBufferBytes: expected an integer")]
    [InlineData("""{ "ack": 1 }""", "ack: expected true or false")]
    [InlineData("""{ "resyncSeconds": -1 }""", "resyncSeconds: expected an integer 0-86400")]
    [InlineData("""{ "buffer": 1 }""", "buffer: unknown setting (expected receiveBufferBytes, batchBytes, ack")]
    [InlineData("""[1]""", "expected an object of settings")]
    public void Parse_BadSetting_ArgumentExceptionNamingIt(string json, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => Parse(json));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }
}
