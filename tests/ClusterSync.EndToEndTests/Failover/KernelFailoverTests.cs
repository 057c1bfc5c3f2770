using ClusterSync.EndToEndTests.Workload;
using Xunit.Abstractions;

namespace ClusterSync.EndToEndTests.Failover;

/// <summary>
/// Issue 15, item 2: two real Linux firewalls (<see cref="FirewallPair"/>), 200 long-lived TCP connections exchanging
/// data every 50 ms plus 20 short connections per second client→server through fw1; fw1 fails (its node SIGKILLed,
/// the firewall cut off by an nftables netdev drop) and client and server route through fw2.
/// <list type="bullet">
/// <item>Control: no state sync — fw2 has never seen the connections, so every long-lived one stalls (its mid-stream
/// packets are INVALID there), while new connections through fw2 work.</item>
/// <item>ClusterSync: a node per firewall with the kernel conntrack data plane; fw2's node (Standby) takes over and
/// commits its replica into fw2's kernel table; every long-lived connection it held keeps exchanging data.</item>
/// </list>
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed partial class KernelFailoverTests(ITestOutputHelper log)
{
    private const int LongLived = 200;
    private const int ShortPerSecond = 20;

    /// <summary>How long a long-lived connection may take to exchange data again after the switch (TCP's retransmission backoff included).</summary>
    private static readonly TimeSpan s_resumeWithin = TimeSpan.FromSeconds(20);

    /// <summary>How long the control run watches for a long-lived connection that still gets through.</summary>
    private static readonly TimeSpan s_stallWindow = TimeSpan.FromSeconds(5);

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [NetnsFact]
    public async Task Failover_WithoutStateSync_LongLivedConnectionsStall()
    {
        await using var net = await FirewallPair.CreateAsync(nat: false);
        Log($"namespaces {net.Prefix}-*");
        var traffic = await TrafficWorkload.StartAsync(net, LongLived, ShortPerSecond);
        Log($"{LongLived} long-lived connections up through fw1");
        await EveryConnectionProgressesAsync(traffic, TimeSpan.FromSeconds(10), "before the switch");
        var fw1Ports = await net.ConntrackClientPortsAsync(1, TrafficWorkload.Port);
        Assert.True(traffic.ClientPorts.All(fw1Ports.Contains), "fw1's kernel table lacks some long-lived connections");
        Assert.Empty(await net.ConntrackClientPortsAsync(2, TrafficWorkload.Port));

        long switched = await SwitchToFw2Async(net, nodes: null);
        var baseline = await traffic.ProgressAtOrAfterAsync(switched, TimeSpan.FromSeconds(5));
        var after = await traffic.ProgressAtOrAfterAsync(baseline.UnixMs + (long)s_stallWindow.TotalMilliseconds, s_stallWindow + TimeSpan.FromSeconds(5));
        int progressed = Enumerable.Range(0, LongLived).Count(i => after.Counts[i] > baseline.Counts[i]);
        Log($"control: {progressed} of {LongLived} long-lived connections exchanged data in the {s_stallWindow.TotalSeconds:F0} s after the switch; "
            + $"short connections ok {baseline.ShortOk} -> {after.ShortOk}, failed {baseline.ShortFailed} -> {after.ShortFailed}");

        // The switch itself works (new connections flow through fw2: a SYN may create state there) ...
        Assert.True(after.ShortOk > baseline.ShortOk, "no short connection got through fw2 after the switch: the topology, not the state, is broken");
        // ... but without state, no long-lived connection does.
        Assert.Equal(0, progressed);
    }

    [NetnsFact]
    public Task Failover_ConntrackPlugin_EverySynchronizedConnectionKeepsFlowing() => FailoverWithClusterSyncAsync(nat: false);

    [NetnsFact]
    public Task Failover_ConntrackPluginWithNat_EverySynchronizedConnectionKeepsFlowing() => FailoverWithClusterSyncAsync(nat: true);

    private async Task FailoverWithClusterSyncAsync(bool nat)
    {
        await using var net = await FirewallPair.CreateAsync(nat);
        Log($"namespaces {net.Prefix}-*{(nat ? ", source NAT to " + FirewallPair.NatAddress : "")}");
        await using var nodes = new FirewallNodes(net);
        await nodes.KeygenAsync();
        nodes.Start(1);
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(1)) == "Active", "fw1's node Active", TimeSpan.FromSeconds(60));
        nodes.Start(2);
        await nodes.WaitUntilAsync(async () => await nodes.StatusAsync(2) is { } s && FirewallNodes.MemberState(s) == "Standby"
            && s.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "fw2's node Standby after its full sync", TimeSpan.FromSeconds(60));
        Log("fw1 Active, fw2 Standby");

        var traffic = await TrafficWorkload.StartAsync(net, LongLived, ShortPerSecond);
        Log($"{LongLived} long-lived connections up through fw1");
        var ports = traffic.ClientPorts.ToHashSet();
        HashSet<int> replicated = [];
        await nodes.WaitUntilAsync(async () =>
        {
            replicated = ClientPortsOf(await nodes.TableKeysAsync(2) ?? []);
            return ports.IsSubsetOf(replicated);
        }, $"fw2's replica holding all {LongLived} long-lived connections", TimeSpan.FromSeconds(30));
        Log($"fw2's replica holds all {LongLived} long-lived connections ({replicated.Count} client connections in all)");
        Assert.False((await net.ConntrackClientPortsAsync(2, TrafficWorkload.Port)).Overlaps(ports), "fw2's kernel knew a long-lived connection before any failover");
        await EveryConnectionProgressesAsync(traffic, TimeSpan.FromSeconds(10), "before the failover");
        // Short connections churn fw1's table (and the replica) for a while before the failure.
        var churn = await traffic.ProgressAtOrAfterAsync(0, TimeSpan.FromSeconds(5));
        await nodes.WaitUntilAsync(() => Task.FromResult(traffic.Latest!.ShortOk >= churn.ShortOk + (2 * ShortPerSecond)), "two seconds of short connections", TimeSpan.FromSeconds(20));

        long switched = await SwitchToFw2Async(net, nodes);
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(2)) == "Active", "fw2's node Active", TimeSpan.FromSeconds(10));
        HashSet<int> committed = [];
        await Wait.UntilAsync(
            async () =>
            {
                committed = await net.ConntrackClientPortsAsync(2, TrafficWorkload.Port);
                return ports.IsSubsetOf(committed);
            },
            TimeSpan.FromSeconds(10)); // not held in time: the assertions below name the missing entries

        var synchronized = ports.Intersect(committed).ToHashSet();
        if (nat)
        {
            // The committed entries carry the NAT binding: the server answers the cluster's NAT address.
            var natted = await net.ConntrackReplyDestinationsAsync(2, TrafficWorkload.Port);
            var notNatted = synchronized.Where(p => !natted.TryGetValue(p, out var d) || d != FirewallPair.NatAddress).ToList();
            Assert.True(notNatted.Count == 0, $"{notNatted.Count} committed entries in fw2 without the reply tuple to {FirewallPair.NatAddress}: ports {string.Join(", ", notNatted.Take(10))}");
        }

        Log($"fw2 Active; its kernel table holds {synchronized.Count} of {LongLived} long-lived connections ({DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - switched} ms after the switch)");
        Assert.True(synchronized.Count == LongLived,
            $"fw2 committed {synchronized.Count} of the {LongLived} long-lived connections its replica held; missing client ports: {string.Join(", ", ports.Except(committed).Take(20))}\n{nodes[2]!.Output}");

        var baseline = await traffic.ProgressAtOrAfterAsync(switched, TimeSpan.FromSeconds(5));
        var resumedAt = await ResumeTimesAsync(traffic, baseline, Enumerable.Range(0, LongLived).Where(i => synchronized.Contains(traffic.ClientPorts[i])).ToList(), s_resumeWithin);
        var stalled = resumedAt.Where(r => r.Value is null).Select(r => r.Key).ToList();
        var times = resumedAt.Values.Where(v => v is not null).Select(v => v!.Value - switched).Order().ToList();
        var latest = traffic.Latest!;
        Log($"{times.Count} of {synchronized.Count} synchronized long-lived connections exchanged data after the switch "
            + $"(p50 {Percentile(times, 0.5)} ms, max {(times.Count > 0 ? times[^1] : 0)} ms after it); dead: {traffic.Dead.Count}; "
            + $"short connections ok {latest.ShortOk}, failed {latest.ShortFailed}");
        Assert.True(stalled.Count == 0,
            $"{stalled.Count} synchronized long-lived connections made no progress within {s_resumeWithin.TotalSeconds:F0} s of the switch: "
            + $"{string.Join(", ", stalled.Take(20).Select(i => $"#{i} port {traffic.ClientPorts[i]}"))}; dead: {string.Join("; ", traffic.Dead.Values.Take(5))}\nfw2 node:\n{nodes[2]!.Output}");
        Assert.Empty(traffic.Dead);
        // New connections flow through fw2 too (its node Active, its firewall creating state from SYNs).
        var afterSwitch = await traffic.ProgressAtOrAfterAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), TimeSpan.FromSeconds(5));
        await nodes.WaitUntilAsync(() => Task.FromResult(traffic.Latest!.ShortOk > afterSwitch.ShortOk), "a short connection through fw2", TimeSpan.FromSeconds(10));
    }

    /// <summary>SIGKILL fw1's node (when there is one), cut fw1 off, route client and server through fw2; the switch's wall-clock time.</summary>
    private async Task<long> SwitchToFw2Async(FirewallPair net, FirewallNodes? nodes)
    {
        if (nodes?[1] is { } fw1Node)
        {
            fw1Node.Kill();
            Assert.True(fw1Node.HasExited, "fw1's node did not die of SIGKILL within 10 s");
        }

        await net.CutOffAsync(1);
        await net.RouteThroughAsync(2);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Log($"fw1 {(nodes is null ? "" : "node SIGKILLed, ")}cut off; client and server route through fw2");
        return now;
    }

    /// <summary>Waits until every long-lived connection has completed another round trip (all alive and flowing).</summary>
    private static async Task EveryConnectionProgressesAsync(TrafficWorkload traffic, TimeSpan timeout, string when)
    {
        var start = await traffic.ProgressAtOrAfterAsync(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), TimeSpan.FromSeconds(5));
        var resumed = await ResumeTimesAsync(traffic, start, Enumerable.Range(0, start.Counts.Length).ToList(), timeout);
        var stuck = resumed.Where(r => r.Value is null).Select(r => r.Key).ToList();
        Assert.True(stuck.Count == 0, $"{stuck.Count} long-lived connections made no progress {when}: #{string.Join(", #", stuck.Take(20))}");
    }

    /// <summary>For each connection, the report time at which its count first exceeded <paramref name="baseline"/>'s (null: not within the timeout).</summary>
    private static async Task<Dictionary<int, long?>> ResumeTimesAsync(TrafficWorkload traffic, Progress baseline, IReadOnlyList<int> connections, TimeSpan timeout)
    {
        var resumed = connections.ToDictionary(i => i, _ => (long?)null);
        var clock = Stopwatch.StartNew();
        long seen = baseline.UnixMs;
        while (clock.Elapsed < timeout && resumed.Values.Any(v => v is null))
        {
            var p = await traffic.ProgressAtOrAfterAsync(seen + 1, TimeSpan.FromSeconds(5));
            seen = p.UnixMs;
            foreach (var i in connections)
            {
                if (resumed[i] is null && p.Counts[i] > baseline.Counts[i])
                {
                    resumed[i] = p.UnixMs;
                }
            }
        }

        return resumed;
    }

    private static HashSet<int> ClientPortsOf(IEnumerable<string> keys)
        => keys.Select(k => ClientKey().Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToHashSet();

    private static long Percentile(List<long> sorted, double q) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];

    private void Log(string message) => log.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1} s  {message}");

    [GeneratedRegex(@"^tcp 10\.201\.1\.10:(\d+) -> 10\.201\.2\.10:7000 ")]
    private static partial Regex ClientKey();
}
