using ClusterSync.EndToEndTests.Workload;
using Xunit.Abstractions;

namespace ClusterSync.EndToEndTests.Failover;

/// <summary>
/// Issue 10, item 3: traffic follows the Active through the nodes' built-in virtual addresses
/// (<c>hooks.virtualAddresses</c>). The two firewalls of <see cref="FirewallPair"/> (kernel conntrack data plane) hold
/// 10.201.1.254/24 on the client side and 10.201.2.254/24 on the server side only while Active, plus
/// fd00:201:1::254/64 on the client side (announced by unsolicited neighbour advertisement); the client and the server
/// route through those addresses, so no test step moves a route: the new Active's gratuitous ARP does.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed partial class VirtualAddressTests(ITestOutputHelper log)
{
    private const int LongLived = 100;
    private const int ShortPerSecond = 10;
    private const string ClientVip = "10.201.1.254";
    private const string ServerVip = "10.201.2.254";
    private const string ClientVip6 = "fd00:201:1::254";
    private const string Client6 = "fd00:201:1::10";

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [VirtualAddressFact]
    public async Task VirtualAddress_ActiveSigkilled_MovesToNewActiveAfterItsCommit_EveryConnectionFlowsWithoutARouteChange()
    {
        var (net, nodes, traffic) = await StartAsync();
        await using var _ = net;
        await using var __ = nodes;

        // fw1 dies: its node SIGKILLed (it cannot remove its addresses) and the firewall cut off.
        nodes[1]!.Kill();
        await net.CutOffAsync(1);
        long killed = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Log("fw1's node SIGKILLed, fw1 cut off");
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(2)) == "Active", "fw2's node Active", TimeSpan.FromSeconds(10));
        await AddressMovedAfterCommitAsync(net, nodes, to: 2);
        await EveryConnectionFlowsAsync(traffic, killed, "the SIGKILL");
        await NeighboursPointAtAsync(net, 2);
    }

    [VirtualAddressFact]
    public async Task VirtualAddress_AdminDown_MovesWithZeroLostConnections_AdminUpRejoinsAsStandby()
    {
        var (net, nodes, traffic) = await StartAsync();
        await using var _ = net;
        await using var __ = nodes;

        long requested = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var down = await AdminAsync(net, nodes, 1, "down");
        Log($"admin down on fw1: {down}");
        Assert.Contains("\"outcome\": \"Done\"", down, StringComparison.Ordinal);
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(1)) == "Maintenance"
            && FirewallNodes.MemberState(await nodes.StatusAsync(2)) == "Active", "fw1 Maintenance, fw2 Active", TimeSpan.FromSeconds(10));
        await AddressMovedAfterCommitAsync(net, nodes, to: 2);
        await nodes.WaitUntilAsync(() => Task.FromResult(nodes[1]!.HasLogged($"virtual address {ClientVip}/24 removed from c0")), "fw1 removed its address", TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(ClientVip, await Host.MustAsync("ip", "-n", net.Firewall(1), "address", "show", "dev", "c0"), StringComparison.Ordinal);

        // Zero lost synchronized connections: every long-lived one exchanges data through fw2 (fw1 still forwards, but the
        // client and the server now send to fw2's link-layer address).
        await EveryConnectionFlowsAsync(traffic, requested, "admin down");
        await NeighboursPointAtAsync(net, 2);
        Assert.Empty(traffic.Dead);

        var up = await AdminAsync(net, nodes, 1, "up");
        Log($"admin up on fw1: {up}");
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(1)) == "Standby", "fw1 Standby again", TimeSpan.FromSeconds(10));
        Assert.Equal("Active", FirewallNodes.MemberState(await nodes.StatusAsync(2)));
        Assert.DoesNotContain(ClientVip, await Host.MustAsync("ip", "-n", net.Firewall(1), "address", "show", "dev", "c0"), StringComparison.Ordinal);

        // A clean stop (SIGTERM) of the Active removes its addresses; fw1, back in the elections, takes them.
        var fw2 = nodes[2]!;
        await fw2.TerminateAsync();
        Assert.Equal(0, await fw2.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(fw2.HasLogged($"virtual address {ClientVip}/24 removed from c0"), fw2.Tail());
        Assert.DoesNotContain(ClientVip, await Host.MustAsync("ip", "-n", net.Firewall(2), "address", "show", "dev", "c0"), StringComparison.Ordinal);
        await nodes.WaitUntilAsync(async () => await HoldsAsync(net, 1, ClientVip) && await HoldsAsync(net, 1, ServerVip), "fw1 Active holding the addresses again", TimeSpan.FromSeconds(20));
        Log("fw2's node stopped cleanly (addresses removed); fw1 holds them again");
    }

    private static async Task<bool> HoldsAsync(FirewallPair net, int fw, string address)
        => (await Host.MustAsync("ip", "-n", net.Firewall(fw), "address", "show")).Contains($"{address}/24", StringComparison.Ordinal);

    /// <summary>Both firewalls' nodes (fw1 Active holding the addresses, fw2 Standby), the client and server routing through the addresses, traffic up and replicated.</summary>
    private async Task<(FirewallPair Net, FirewallNodes Nodes, TrafficWorkload Traffic)> StartAsync()
    {
        var net = await FirewallPair.CreateAsync(nat: false);
        FirewallNodes? nodes = null;
        try
        {
            Log($"namespaces {net.Prefix}-*");
            await Host.MustAsync("ip", "-n", net.Client, "address", "add", $"{Client6}/64", "dev", "eth0", "nodad");
            nodes = new FirewallNodes(net)
            {
                Adjust = (_, c) => c with
                {
                    Node = c.Node with { Control = c.Node.Control with { TokenFile = "control.token" } },
                    Hooks = new HooksConfig
                    {
                        VirtualAddresses =
                        [
                            new VirtualAddressConfig { Address = $"{ClientVip}/24", Interface = "c0" },
                            new VirtualAddressConfig { Address = $"{ServerVip}/24", Interface = "s0" },
                            new VirtualAddressConfig { Address = $"{ClientVip6}/64", Interface = "c0" },
                        ],
                    },
                },
            };
            ControlTokenFile.Write(Path.Combine(nodes.Directory, "control.token"));
            await nodes.KeygenAsync();
            nodes.Start(1);
            await nodes.WaitUntilAsync(() => Task.FromResult(nodes[1]!.HasLogged($"virtual address {ServerVip}/24 added on s0")
                && nodes[1]!.HasLogged($"virtual address {ClientVip6}/64 added on c0")), "fw1 Active holding its addresses", TimeSpan.FromSeconds(60));
            nodes.Start(2);
            await nodes.WaitUntilAsync(async () => await nodes.StatusAsync(2) is { } s && FirewallNodes.MemberState(s) == "Standby"
                && s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "fw2's node Standby after its full sync", TimeSpan.FromSeconds(60));
            Assert.DoesNotContain(ClientVip, await Host.MustAsync("ip", "-n", net.Firewall(2), "address", "show", "dev", "c0"), StringComparison.Ordinal);

            await Host.MustAsync("ip", "-n", net.Client, "route", "replace", "default", "via", ClientVip);
            await Host.MustAsync("ip", "-n", net.Server, "route", "replace", "default", "via", ServerVip);
            await Host.InAsync(net.Client, "ping", "-6", "-c", "1", "-W", "2", ClientVip6); // the client learns fw1's link-layer address for it
            var traffic = await TrafficWorkload.StartAsync(net, LongLived, ShortPerSecond);
            Log($"{LongLived} long-lived connections up through the virtual addresses (fw1)");
            var ports = traffic.ClientPorts.ToHashSet();
            await nodes.WaitUntilAsync(async () => ports.IsSubsetOf(ClientPortsOf(await nodes.TableKeysAsync(2) ?? [])),
                $"fw2's replica holding all {LongLived} long-lived connections", TimeSpan.FromSeconds(30));
            await NeighboursPointAtAsync(net, 1);
            return (net, nodes, traffic);
        }
        catch
        {
            if (nodes is not null)
            {
                await nodes.DisposeAsync();
            }

            await net.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The new Active holds the addresses, and took them only after its data-plane commit ended: its own log line says
    /// when it added each one and when its kernel commit ended (Unix ms, the node's clock).
    /// </summary>
    private async Task AddressMovedAfterCommitAsync(FirewallPair net, FirewallNodes nodes, int to)
    {
        var node = nodes[to]!;
        await nodes.WaitUntilAsync(() => Task.FromResult(AddedLines(node.Output).Count >= 3), $"fw{to} added its three addresses", TimeSpan.FromSeconds(20));
        var status = (await nodes.StatusAsync(to))!.Value;
        long commitEnded = status.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommitFinishedUnixMs").GetInt64();
        foreach (var (address, added, commit) in AddedLines(node.Output))
        {
            Log($"fw{to}: {address} added at {added}, {added - commit} ms after its kernel commit ended ({commit})");
            Assert.Equal(commitEnded, commit);
            Assert.True(added >= commit, $"fw{to} added {address} at {added}, before its data-plane commit ended at {commit}");
        }

        Assert.True(status.GetProperty("dataPlane").GetProperty("plugin").GetProperty("sinkCommits").GetInt64() >= 1, "no kernel commit");
        Assert.Contains($"{ClientVip}/24", await Host.MustAsync("ip", "-n", net.Firewall(to), "address", "show", "dev", "c0"), StringComparison.Ordinal);
        Assert.Contains($"{ServerVip}/24", await Host.MustAsync("ip", "-n", net.Firewall(to), "address", "show", "dev", "s0"), StringComparison.Ordinal);
        Assert.Contains(ClientVip6, await Host.MustAsync("ip", "-n", net.Firewall(to), "-6", "address", "show", "dev", "c0"), StringComparison.Ordinal);
    }

    /// <summary>The client's and the server's neighbour entries for the addresses carry firewall <paramref name="fw"/>'s link-layer addresses (the announcements worked).</summary>
    private async Task NeighboursPointAtAsync(FirewallPair net, int fw)
    {
        string c0 = (await Host.InAsync(net.Firewall(fw), "cat", "/sys/class/net/c0/address")).Trim();
        string s0 = (await Host.InAsync(net.Firewall(fw), "cat", "/sys/class/net/s0/address")).Trim();
        string? client = null, server = null, client6 = null;
        bool ok = await Wait.UntilAsync(async () =>
        {
            client = await Host.MustAsync("ip", "-n", net.Client, "neigh", "show", ClientVip);
            server = await Host.MustAsync("ip", "-n", net.Server, "neigh", "show", ServerVip);
            client6 = await Host.MustAsync("ip", "-n", net.Client, "-6", "neigh", "show", ClientVip6);
            return client.Contains(c0, StringComparison.OrdinalIgnoreCase) && server.Contains(s0, StringComparison.OrdinalIgnoreCase)
                && client6.Contains(c0, StringComparison.OrdinalIgnoreCase);
        }, TimeSpan.FromSeconds(10));
        Assert.True(ok, $"neighbour entries not pointing at fw{fw} (c0 {c0}, s0 {s0}): client '{client?.Trim()}', server '{server?.Trim()}', client IPv6 '{client6?.Trim()}'");
    }

    private async Task EveryConnectionFlowsAsync(TrafficWorkload traffic, long since, string after)
    {
        var baseline = await traffic.ProgressAtOrAfterAsync(since, TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        var progressed = new HashSet<int>();
        long seen = baseline.UnixMs;
        while (clock.Elapsed < TimeSpan.FromSeconds(20) && progressed.Count < LongLived)
        {
            var p = await traffic.ProgressAtOrAfterAsync(seen + 1, TimeSpan.FromSeconds(5));
            seen = p.UnixMs;
            for (int i = 0; i < LongLived; i++)
            {
                if (p.Counts[i] > baseline.Counts[i] && progressed.Add(i))
                {
                    Log($"connection #{i} flowing again {p.UnixMs - since} ms after {after}");
                }
            }
        }

        Log($"{progressed.Count} of {LongLived} long-lived connections exchanged data after {after}; dead: {traffic.Dead.Count}");
        Assert.True(progressed.Count == LongLived, $"{LongLived - progressed.Count} long-lived connections made no progress within 20 s of {after}; dead: {string.Join("; ", traffic.Dead.Values.Take(5))}");
        Assert.Empty(traffic.Dead);
    }

    private static async Task<string> AdminAsync(FirewallPair net, FirewallNodes nodes, int fw, string action)
    {
        await using var admin = CliProcess.Start($"admin {action} fw{fw}", ["ip", "netns", "exec", net.Firewall(fw)],
            "admin", action, "--endpoint", $"http://127.0.0.1:{FirewallNodes.ControlPort}", "--token-file", Path.Combine(nodes.Directory, "control.token"), "--json");
        int exit = await admin.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, $"admin {action} on fw{fw}: exit {exit}\n{admin.Output}\n{nodes.Logs()}");
        return admin.Stdout;
    }

    private static List<(string Address, long Added, long Commit)> AddedLines(string output)
        => [.. AddedLine().Matches(output).Select(m => (m.Groups[1].Value, long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
            .GroupBy(x => x.Item1).Select(g => g.Last())];

    private static HashSet<int> ClientPortsOf(IEnumerable<string> keys)
        => keys.Select(k => ClientKey().Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();

    private void Log(string message) => log.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1} s  {message}");

    [GeneratedRegex(@"virtual address (\S+) added on \S+ at (\d+) \(Unix ms\), after the data-plane commit ended at (\d+)")]
    private static partial Regex AddedLine();

    [GeneratedRegex(@"^tcp 10\.201\.1\.10:(\d+) -> 10\.201\.2\.10:7000 ")]
    private static partial Regex ClientKey();
}
