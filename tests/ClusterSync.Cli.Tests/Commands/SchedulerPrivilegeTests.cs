namespace ClusterSync.Cli.Tests.Commands;

/// <summary>
/// A real-time scheduler for the sync threads (<c>sync.scheduler</c>, <c>bench delta --scheduler</c>) in a process
/// without CAP_SYS_NICE: refused before anything starts, exit 2, naming the field and the capability. The process is
/// this test's (root, as CI runs) with CAP_SYS_NICE removed by <c>setpriv</c>, so only that differs.
/// </summary>
public sealed class SchedulerPrivilegeTests : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private static readonly string[] s_withoutSysNice = ["setpriv", "--inh-caps=-sys_nice", "--ambient-caps=-sys_nice", "--bounding-set=-sys_nice"];
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-cli-sched-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void SkipUnlessRoot()
    {
        Skip.IfNot(Environment.UserName == "root", "needs root: setpriv removes CAP_SYS_NICE from a root process (CI runs as root)");
        Skip.IfNot(File.Exists("/usr/bin/setpriv") || File.Exists("/bin/setpriv"), "needs setpriv (Debian package util-linux)");
    }

    [SkippableFact]
    public async Task Node_FifoSchedulerWithoutCapSysNice_Exit2NamingTheFieldAndTheCapability()
    {
        SkipUnlessRoot();
        var config = Path.Combine(_dir, "node.json");
        File.WriteAllText(config, """
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:18196", "fullSyncPort": 18296 }, { "id": 2, "address": "127.0.0.1:18197", "fullSyncPort": 18297 } ] },
              "node": { "memberId": 1, "control": { "port": 0 } },
              "sync": { "scheduler": { "policy": "fifo", "priority": 10 } }
            }
            """);

        await using var node = CliProcess.Start("node without CAP_SYS_NICE", s_withoutSysNice, "node", "--config", config);
        await node.WaitForExitAsync(s_timeout);

        node.AssertExit2($"{config}: sync.scheduler.policy: policy 'fifo' needs root or CAP_SYS_NICE");
    }

    [SkippableFact]
    public async Task BenchDelta_RoundRobinWithoutCapSysNice_Exit2NamingTheOption()
    {
        SkipUnlessRoot();

        await using var bench = CliProcess.Start("bench delta without CAP_SYS_NICE", s_withoutSysNice, "bench", "delta", "--scheduler", "rr:5", "--entries", "100", "--seconds", "1");
        await bench.WaitForExitAsync(s_timeout);

        bench.AssertExit2("--scheduler: policy: policy 'rr' needs root or CAP_SYS_NICE");
    }
}
