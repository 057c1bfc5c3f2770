using Microsoft.Extensions.Time.Testing;

namespace ClusterSync.Plugins.Conntrack.Tests.Kernel;

/// <summary>
/// The template pickup against the real nftables and conntrack sysctl of a namespace of the test's own (root only):
/// installed, removed when its window ends (a fake clock drives the window), and removed at the next start after a
/// node died inside a window.
/// </summary>
public sealed class TemplatePickupKernelTests
{
    private static readonly TemplatePickupSettings Settings = new() { Family = "inet", Table = "fwt", Chain = "forward", PickupWindowSeconds = 30 };

    private static Netns Firewall()
    {
        var ns = Netns.Create();
        try
        {
            ns.Nft("""
                table inet fwt {
                  chain forward {
                    type filter hook forward priority filter; policy drop;
                    ct state established,related accept
                    tcp flags & (syn|ack) == syn ct state new accept
                    counter drop
                  }
                }
                """);
            ns.Exec("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0");
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    private static ReplicaTemplate Template(FakeTimeProvider time, ushort port, uint lifetime = 60)
        => new(ConnectionKey.IPv4(0x0AC9010A, 0x0AC9020A, 0, port, 6), 1, lifetime, time.GetUtcNow().ToUnixTimeMilliseconds());

    [NetnsFact]
    public void Install_ThenWindowEnds_RulesSetsAndLooseRemoved()
    {
        using var ns = Firewall();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var pickup = ns.Run(() => TemplatePickup.Create(Settings, time));

        // One live template, one whose life ends before the window (a shorter element timeout), one expired (left out).
        var expired = new ReplicaTemplate(ConnectionKey.IPv4(0x0AC9010A, 0x0AC9020A, 0, 7003, 6), 1, 5, time.GetUtcNow().ToUnixTimeMilliseconds() - 10_000);
        pickup.Install([Template(time, 7001), Template(time, 7002, lifetime: 10), expired]);

        string table = ns.Exec("nft", "list", "table", "inet", "fwt");
        Assert.Contains("10.201.1.10 . 10.201.2.10 . tcp . 7001 timeout 30s", table, StringComparison.Ordinal);
        Assert.Contains("10.201.1.10 . 10.201.2.10 . tcp . 7002 timeout 10s", table, StringComparison.Ordinal);
        Assert.DoesNotContain(". 7003 ", table, StringComparison.Ordinal);
        Assert.Contains("jump clustersync_templates comment \"clustersync connection templates (tcp_loose was 0)\"", table, StringComparison.Ordinal);
        Assert.Equal("1", ns.Exec("sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose").Trim());
        Assert.True(pickup.Active);
        var c = Counters(pickup);
        Assert.Equal(2, c["templates_installed"]);
        Assert.Equal(1, c["templates_skipped"]);

        // A second takeover inside the window replaces the installation: still one jump rule.
        pickup.Install([Template(time, 7001)]);
        table = ns.Exec("nft", "list", "table", "inet", "fwt");
        Assert.Single(table.Split('\n'), l => l.Contains("jump clustersync_templates", StringComparison.Ordinal));
        Assert.DoesNotContain(". 7002 ", table, StringComparison.Ordinal);

        time.Advance(TimeSpan.FromSeconds(Settings.PickupWindowSeconds));

        Assert.True(Wait.Until(() => !pickup.Active, TimeSpan.FromSeconds(15)), "the window did not end");
        table = ns.Exec("nft", "list", "table", "inet", "fwt");
        Assert.DoesNotContain("clustersync", table, StringComparison.Ordinal);
        Assert.Contains("counter packets", table, StringComparison.Ordinal); // the firewall's own rules untouched
        Assert.Equal("0", ns.Exec("sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose").Trim());
        c = Counters(pickup);
        Assert.Equal(2, c["template_windows"]);
        Assert.Equal(1, c["template_windows_ended"]);
        Assert.Equal(0, c["template_remove_failures"]);
    }

    [NetnsFact]
    public void Create_AfterANodeDiedInsideAWindow_LeftoversRemovedAndLooseRestored()
    {
        using var ns = Firewall();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var dead = ns.Run(() => TemplatePickup.Create(Settings, time));
        dead.Install([Template(time, 7001)]);
        Assert.Equal("1", ns.Exec("sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose").Trim());
        // The node dies: nothing removes the window (this object is disposed only after the assertions).

        using var restarted = ns.Run(() => TemplatePickup.Create(Settings, new FakeTimeProvider(DateTimeOffset.UtcNow)));

        Assert.DoesNotContain("clustersync", ns.Exec("nft", "list", "table", "inet", "fwt"), StringComparison.Ordinal);
        Assert.Equal("0", ns.Exec("sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose").Trim());
        Assert.Equal(1, Counters(restarted)["template_leftovers_removed"]);
    }

    [NetnsFact]
    public void Install_NoSuchChain_InvalidOperationNamingNftAnswer()
    {
        using var ns = Firewall();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var pickup = ns.Run(() => TemplatePickup.Create(Settings with { Chain = "nosuch" }, time));

        var error = Assert.Throws<InvalidOperationException>(() => pickup.Install([Template(time, 7001)]));

        Assert.Contains("inet fwt nosuch", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, Counters(pickup)["template_install_failures"]);
        Assert.Equal("0", ns.Exec("sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose").Trim());
    }

    private static Dictionary<string, long> Counters(TemplatePickup pickup)
    {
        var c = new Dictionary<string, long>(StringComparer.Ordinal);
        pickup.AddCounters(c);
        return c;
    }
}
