using Xunit.Abstractions;

namespace ClusterSync.EndToEndTests.Failover;

/// <summary>
/// The keepalived integration of docs/operations.md, for real: keepalived (VRRP) in both firewall namespaces holds
/// 10.201.1.200/24 on the client side, and the example hook <c>examples/keepalived/clustersync-track.sh</c> (all three
/// hooks of both nodes) writes the track file that makes the ClusterSync Active keepalived's MASTER. An
/// <c>admin failover --to 2</c> moves the Active role, and keepalived moves the address with it.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class KeepalivedTests(ITestOutputHelper log)
{
    private const string Vip = "10.201.1.200";

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    [KeepalivedFact]
    public async Task KeepalivedTrackExample_VrrpMasterFollowsTheClusterSyncActive_AcrossAnAdminFailover()
    {
        await using var net = await FirewallPair.CreateAsync(nat: false);
        // The test process id in the name: FirewallPair removes the directories of test processes that no longer run.
        string dir = Directory.CreateTempSubdirectory($"cse2e-{Environment.ProcessId}-nodes-keepalived-").FullName;
        try
        {
            await RunAsync(net, dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task RunAsync(FirewallPair net, string dir)
    {
        string Track(int fw) => Path.Combine(dir, $"keepalived-track-fw{fw}");
        string? Read(int fw) => File.Exists(Track(fw)) ? File.ReadAllText(Track(fw)).Trim() : null;
        string script = Path.Combine(CliProcess.RepositoryRoot(), "examples", "keepalived", "clustersync-track.sh");
        await using var nodes = new FirewallNodes(net)
        {
            Adjust = (fw, c) => c with
            {
                Node = c.Node with { Control = c.Node.Control with { TokenFile = "control.token" } },
                Hooks = new HooksConfig { OnActive = [script, Track(fw)], OnStandby = [script, Track(fw)], OnFault = [script, Track(fw)] },
            },
        };
        ControlTokenFile.Write(Path.Combine(nodes.Directory, "control.token"));
        await nodes.KeygenAsync();
        nodes.Start(1);
        await nodes.WaitUntilAsync(() => Task.FromResult(Read(1) == "1"), "fw1 Active, its track file 1", TimeSpan.FromSeconds(60));
        nodes.Start(2);
        await nodes.WaitUntilAsync(async () => FirewallNodes.MemberState(await nodes.StatusAsync(2)) == "Standby" && Read(2) == "0", "fw2 Standby, its track file 0", TimeSpan.FromSeconds(60));
        Log("fw1 Active (track 1), fw2 Standby (track 0)");

        // keepalived in each firewall, the same base priority: the track file's weight decides the MASTER.
        var keepalived = new NsProcess?[3];
        for (int fw = 1; fw <= 2; fw++)
        {
            string conf = Path.Combine(dir, $"keepalived-fw{fw}.conf");
            File.WriteAllText(conf, $$"""
                global_defs {
                    router_id fw{{fw}}
                }
                track_file clustersync_active {
                    file {{Track(fw)}}
                    weight 100
                }
                vrrp_instance VI_1 {
                    state BACKUP
                    interface c0
                    virtual_router_id 51
                    priority 100
                    advert_int 1
                    track_file {
                        clustersync_active
                    }
                    virtual_ipaddress {
                        {{Vip}}/24
                    }
                }
                """);
            keepalived[fw] = net.Start($"keepalived fw{fw}", net.Firewall(fw), "keepalived",
                ["-n", "-l", "-P", "-G", "-f", conf, "-p", Path.Combine(dir, $"keepalived-fw{fw}.pid"), "-r", Path.Combine(dir, $"vrrp-fw{fw}.pid")]);
        }

        await nodes.WaitUntilAsync(async () => await HoldsAsync(net, 1) && !await HoldsAsync(net, 2), $"keepalived on fw1 MASTER holding {Vip}", TimeSpan.FromSeconds(20));
        Log($"keepalived: fw1 MASTER holding {Vip}");

        await using (var failover = CliProcess.Start("admin failover fw1", ["ip", "netns", "exec", net.Firewall(1)],
            "admin", "failover", "--to", "2", "--endpoint", $"http://127.0.0.1:{FirewallNodes.ControlPort}", "--token-file", Path.Combine(nodes.Directory, "control.token")))
        {
            int exit = await failover.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 0, $"admin failover: exit {exit}\n{failover.Output}\n{nodes.Logs()}");
            Log($"admin failover --to 2: {failover.Stdout.Trim()}");
        }

        await nodes.WaitUntilAsync(() => Task.FromResult(Read(2) == "1" && Read(1) == "0"), "the track files follow the Active to fw2", TimeSpan.FromSeconds(20));
        await nodes.WaitUntilAsync(async () => await HoldsAsync(net, 2) && !await HoldsAsync(net, 1), $"keepalived moving {Vip} to fw2", TimeSpan.FromSeconds(20));
        Log($"keepalived: fw2 MASTER holding {Vip}");
        Assert.Equal("Active", FirewallNodes.MemberState(await nodes.StatusAsync(2)));
        Assert.Contains("Entering MASTER STATE", keepalived[2]!.Log, StringComparison.Ordinal);
        await nodes.WaitUntilAsync(() => Task.FromResult(nodes[2]!.HasLogged($"keepalived track file {Track(2)} = 1")), "fw2 logging the script's output", TimeSpan.FromSeconds(10));
    }

    private static async Task<bool> HoldsAsync(FirewallPair net, int fw)
        => (await Host.MustAsync("ip", "-n", net.Firewall(fw), "address", "show", "dev", "c0")).Contains($"{Vip}/24", StringComparison.Ordinal);

    private void Log(string message) => log.WriteLine($"{_clock.Elapsed.TotalSeconds,6:F1} s  {message}");
}
