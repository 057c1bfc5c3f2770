namespace ClusterSync.Core.Tests.Policy;

public class PortProtocolClassifierTests
{
    private static ConnectionKey Tcp(ushort port) => ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 40000, port, 6);

    private static ConnectionKey Udp(ushort port) => ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 40000, port, 17);

    private static ConnectionKey Proto(byte protocol, ushort port = 0) => ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 1, port, protocol);

    private static PortProtocolClassifier Of(params ClassRuleOptions[] rules) => new(rules);

    private static ClassRuleOptions Rule(string protocol, string? ports, string cls) => new() { Protocol = protocol, Ports = ports, Class = cls };

    [Fact]
    public void Classify_OverlappingPortRules_FirstMatchWins()
    {
        var c = Of(
            Rule("tcp", "80", "first"),
            Rule("tcp", "1-1000", "second"),
            Rule("tcp", "80,443", "third"));

        Assert.Equal("first", c.Classify(Tcp(80)));
        Assert.Equal("second", c.Classify(Tcp(443)));
        Assert.Equal("second", c.Classify(Tcp(1)));
        Assert.Equal("second", c.Classify(Tcp(1000)));
        Assert.Null(c.Classify(Tcp(1001)));
    }

    [Fact]
    public void Classify_PortRange_CoversBothEndsInclusive()
    {
        var c = Of(Rule("tcp", "8000-8080, 9000", "web"));

        Assert.Null(c.Classify(Tcp(7999)));
        Assert.Equal("web", c.Classify(Tcp(8000)));
        Assert.Equal("web", c.Classify(Tcp(8040)));
        Assert.Equal("web", c.Classify(Tcp(8080)));
        Assert.Null(c.Classify(Tcp(8081)));
        Assert.Equal("web", c.Classify(Tcp(9000)));
    }

    [Fact]
    public void Classify_FullPortRange_CoversZeroAnd65535()
    {
        var c = Of(Rule("udp", "0-65535", "all"));

        Assert.Equal("all", c.Classify(Udp(0)));
        Assert.Equal("all", c.Classify(Udp(65535)));
    }

    [Fact]
    public void Classify_PortRuleIsPerProtocol()
    {
        var c = Of(Rule("tcp", "53", "tcp-dns"), Rule("udp", "53", "udp-dns"));

        Assert.Equal("tcp-dns", c.Classify(Tcp(53)));
        Assert.Equal("udp-dns", c.Classify(Udp(53)));
        Assert.Null(c.Classify(Proto(132, 53)));
    }

    [Fact]
    public void Classify_ProtocolWideRule_MatchesEveryPortOfThatProtocol()
    {
        var c = Of(Rule("tcp", "22", "ssh"), Rule("icmp", null, "ping"), Rule("tcp", null, "other-tcp"));

        Assert.Equal("ssh", c.Classify(Tcp(22)));
        Assert.Equal("other-tcp", c.Classify(Tcp(23)));
        Assert.Equal("ping", c.Classify(Proto(1, 0x0800)));
        Assert.Null(c.Classify(Udp(22)));
    }

    [Fact]
    public void Classify_NumericProtocol_Matches()
    {
        var c = Of(Rule("47", null, "gre"), Rule("132", "2905", "sigtran"));

        Assert.Equal("gre", c.Classify(Proto(47)));
        Assert.Equal("sigtran", c.Classify(Proto(132, 2905)));
        Assert.Null(c.Classify(Proto(132, 2906)));
    }

    [Fact]
    public void Classify_AnyProtocolRule_MatchesWhatNothingElseMatches()
    {
        var c = Of(Rule("udp", "53", "dns"), Rule("any", null, "fallback"));

        Assert.Equal("dns", c.Classify(Udp(53)));
        Assert.Equal("fallback", c.Classify(Udp(54)));
        Assert.Equal("fallback", c.Classify(Tcp(80)));
        Assert.Equal("fallback", c.Classify(Proto(1)));
        Assert.Equal("fallback", c.Classify(Proto(250)));
    }

    [Fact]
    public void Classify_AnyProtocolWithPorts_AppliesToTcpUdpAndSctp()
    {
        var c = Of(Rule("*", "5060", "sip"));

        Assert.Equal("sip", c.Classify(Tcp(5060)));
        Assert.Equal("sip", c.Classify(Udp(5060)));
        Assert.Equal("sip", c.Classify(Proto(132, 5060)));
        Assert.Null(c.Classify(Tcp(5061)));
    }

    [Theory]
    [InlineData("any", "443", "443")] // an any-protocol port rule before a tcp port rule
    [InlineData("tcp", null, "80")]   // a protocol-wide rule before a port rule of that protocol
    public void Classify_EarlierBroaderRuleAndLaterTcpPortRule_FirstMatchWins(string firstProtocol, string? firstPorts, string port)
    {
        var c = Of(Rule(firstProtocol, firstPorts, "first"), Rule("tcp", port, "second"));

        Assert.Equal("first", c.Classify(Tcp(ushort.Parse(port, System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Fact]
    public void Classify_NoRules_ReturnsNull()
    {
        Assert.Null(Of().Classify(Tcp(80)));
    }

    [Fact]
    public void Classify_EarlierAnyWideRuleAndLaterSpecificRules_FirstMatchWins()
    {
        var c = Of(Rule("any", null, "first"), Rule("tcp", "80", "second"), Rule("udp", null, "third"));

        Assert.Equal("first", c.Classify(Tcp(80)));
        Assert.Equal("first", c.Classify(Udp(53)));
    }

    [Theory]
    [InlineData("tcp", 6)]
    [InlineData("TCP", 6)]
    [InlineData("udp", 17)]
    [InlineData("icmp", 1)]
    [InlineData("icmpv6", 58)]
    [InlineData("sctp", 132)]
    [InlineData("any", -1)]
    [InlineData("*", -1)]
    [InlineData("0", 0)]
    [InlineData("255", 255)]
    public void ParseProtocol_Known_ReturnsNumber(string text, int expected)
    {
        Assert.Equal(expected, PortProtocolClassifier.ParseProtocol(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("tcpx")]
    [InlineData("256")]
    [InlineData("-1")]
    [InlineData(" 6")]
    [InlineData(null)]
    public void ParseProtocol_Unknown_ReturnsNull(string? text)
    {
        Assert.Null(PortProtocolClassifier.ParseProtocol(text));
    }

    [Theory]
    [InlineData("80", 1)]
    [InlineData("80,443", 2)]
    [InlineData(" 80 , 8000-8080 ,", 2)]
    [InlineData("0-65535", 1)]
    [InlineData("7-7", 1)]
    public void TryParsePorts_Valid_ReturnsRanges(string text, int count)
    {
        Assert.True(PortProtocolClassifier.TryParsePorts(text, out var ranges, out var error));
        Assert.Equal(count, ranges.Count);
        Assert.Equal("", error);
    }

    [Theory]
    [InlineData("80-70", "'80-70'")]
    [InlineData("abc", "'abc'")]
    [InlineData("65536", "'65536'")]
    [InlineData("-80", "'-80'")]
    [InlineData("80-", "'80-'")]
    [InlineData("1-2-3", "'1-2-3'")]
    [InlineData("+80", "'+80'")]
    public void TryParsePorts_Invalid_ErrorNamesTheBadItem(string text, string quoted)
    {
        Assert.False(PortProtocolClassifier.TryParsePorts(text, out _, out var error));
        Assert.Contains(quoted, error, StringComparison.Ordinal);
        Assert.Contains("expected ports", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" , ")]
    public void TryParsePorts_Empty_ReportsNoPorts(string text)
    {
        Assert.False(PortProtocolClassifier.TryParsePorts(text, out _, out var error));
        Assert.Contains("at least one port", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_BadProtocol_ThrowsWithRuleIndex()
    {
        var ex = Assert.Throws<ConfigurationException>(() => Of(Rule("tcp", "80", "a"), Rule("bogus", null, "b")));

        Assert.Contains("rules[1].protocol", ex.Message, StringComparison.Ordinal);
        Assert.Contains("bogus", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_BadPorts_ThrowsWithRuleIndex()
    {
        var ex = Assert.Throws<ConfigurationException>(() => Of(Rule("tcp", "80-70", "a")));

        Assert.Contains("rules[0].ports", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_IsPortProtocol()
    {
        Assert.Equal("port-protocol", Of().Name);
    }
}
