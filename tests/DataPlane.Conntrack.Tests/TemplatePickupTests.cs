namespace ClusterSync.Plugins.Conntrack.Tests;

/// <summary>The template pickup's settings and the nft scripts it runs (no kernel: the kernel tests are in Kernel/).</summary>
public sealed class TemplatePickupTests
{
    private static ConntrackSettings Parse(string json) => ConntrackSettings.Parse(JsonDocument.Parse(json).RootElement);

    private static readonly TemplatePickupSettings Inet = new() { Family = "inet", Table = "filter", Chain = "forward" };

    [Fact]
    public void Parse_NoTemplates_NoPickup() => Assert.Null(ConntrackSettings.Parse(null).Templates);

    [Fact]
    public void Parse_Templates_ChainSplitAndDefaults()
    {
        var t = Parse("""{ "templates": { "chain": "inet cse2e forward" } }""").Templates!;

        Assert.Equal(new TemplatePickupSettings { Family = "inet", Table = "cse2e", Chain = "forward", PickupWindowSeconds = 30, TcpLoose = true }, t);
    }

    [Fact]
    public void Parse_Templates_EverySettingRead()
    {
        var t = Parse("""{ "templates": { "chain": "ip fw FORWARD_1", "pickupWindowSeconds": 5, "tcpLoose": false } }""").Templates!;

        Assert.Equal(new TemplatePickupSettings { Family = "ip", Table = "fw", Chain = "FORWARD_1", PickupWindowSeconds = 5, TcpLoose = false }, t);
    }

    [Theory]
    [InlineData("""{ "templates": { } }""", "templates.chain: required")]
    [InlineData("""{ "templates": { "chain": "bridge filter forward" } }""", "templates.chain: expected \"FAMILY TABLE CHAIN\"")]
    [InlineData("""{ "templates": { "chain": "inet filter" } }""", "templates.chain: expected")]
    [InlineData("""{ "templates": { "chain": "inet filter forward; flush ruleset" } }""", "templates.chain: expected")]
    [InlineData("""{ "templates": { "chain": "inet filter forward", "pickupWindowSeconds": 0 } }""", "templates.pickupWindowSeconds: expected an integer 1-3600, found 0")]
    [InlineData("""{ "templates": { "chain": "inet filter forward", "pickupWindowSeconds": 3601 } }""", "templates.pickupWindowSeconds: expected an integer 1-3600")]
    [InlineData("""{ "templates": { "chain": "inet filter forward", "tcpLoose": "yes" } }""", "templates.tcpLoose: expected true or false")]
    [InlineData("""{ "templates": { "chain": "inet filter forward", "window": 3 } }""", "templates.window: unknown setting")]
    [InlineData("""{ "templates": 30 }""", "templates: expected an object")]
    public void Parse_BadTemplates_ArgumentExceptionNamingTheSetting(string json, string message)
        => Assert.Contains(message, Assert.Throws<ArgumentException>(() => Parse(json)).Message, StringComparison.Ordinal);

    [Fact]
    public void InstallScript_Inet_SetsPerFamilyRulesElementsAndOneJumpFirst()
    {
        var v4 = new ReplicaTemplate(ConnectionKey.IPv4(0x0AC90110, 0x0AC9020A, 40000, 7001, 6), 1, 60, 0);
        var v6 = new ReplicaTemplate(ConnectionKey.Create(IPAddress.Parse("fd00::10"), 1, IPAddress.Parse("fd00:2::10"), 53, 17, 0), 1, 60, 0);

        var script = TemplatePickup.InstallScript(Inet, [(v4, 30), (v6, 12)], [17, 23], looseRaised: true);
        var lines = script.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("delete rule inet filter forward handle 17", lines[0]);
        Assert.Equal("delete rule inet filter forward handle 23", lines[1]);
        Assert.Contains("add set inet filter clustersync_templates4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }", lines);
        Assert.Contains("add set inet filter clustersync_templates6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags timeout; }", lines);
        Assert.Contains("add element inet filter clustersync_templates4 { 10.201.1.16 . 10.201.2.10 . 6 . 7001 timeout 30s }", lines);
        Assert.Contains("add element inet filter clustersync_templates6 { fd00::10 . fd00:2::10 . 17 . 53 timeout 12s }", lines);
        Assert.Contains("add rule inet filter clustersync_templates meta l4proto tcp tcp flags & (fin|syn|rst|ack) == ack ip saddr . ip daddr . meta l4proto . th dport @clustersync_templates4 counter accept", lines);
        Assert.Contains("add rule inet filter clustersync_templates meta l4proto tcp tcp flags & (fin|syn|rst|ack) == ack ip daddr . ip saddr . meta l4proto . th sport @clustersync_templates4 counter accept", lines);
        Assert.Equal("insert rule inet filter forward ct state new jump clustersync_templates comment \"clustersync connection templates (tcp_loose was 0)\"", lines[^1]);
        Assert.Single(lines, l => l.StartsWith("insert rule", StringComparison.Ordinal));
    }

    [Fact]
    public void InstallScript_IpFamily_OnlyTheIPv4SetAndRules()
    {
        var v4 = new ReplicaTemplate(ConnectionKey.IPv4(0x0A000001, 0x0A000002, 0, 80, 6), 1, 60, 0);

        var script = TemplatePickup.InstallScript(Inet with { Family = "ip" }, [(v4, 5)], [], looseRaised: false);

        Assert.DoesNotContain("clustersync_templates6", script, StringComparison.Ordinal);
        Assert.DoesNotContain("ip6 ", script, StringComparison.Ordinal);
        Assert.EndsWith("insert rule ip filter forward ct state new jump clustersync_templates comment \"clustersync connection templates\"\n", script, StringComparison.Ordinal);
    }

    [Fact]
    public void RemoveScript_DeletesJumpsThenChainThenSets()
    {
        var lines = TemplatePickup.RemoveScript(Inet, [9]).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("delete rule inet filter forward handle 9", lines[0]);
        Assert.True(Array.IndexOf(lines, "delete chain inet filter clustersync_templates") < Array.IndexOf(lines, "delete set inet filter clustersync_templates4"));
        Assert.Contains("delete set inet filter clustersync_templates6", lines);
    }

    [Fact]
    public void ReplicaTemplate_SourcePortDropped_ExpiryFromUpdate()
    {
        var t = new ReplicaTemplate(ConnectionKey.IPv4(1, 2, 555, 80, 6, 3), 4, 60, 1_000);

        Assert.Equal(ConnectionKey.IPv4(1, 2, 0, 80, 6, 3), t.Shape);
        Assert.Equal(61_000, t.ExpiresAtMs);
    }
}
