using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using ClusterSync.Engine;
using ClusterSync.Engine.Scheduling;
using ClusterSync.Transport;

namespace ClusterSync.Node.Tests.Configuration;

/// <summary>
/// <c>sync.scheduler</c> (conntrackd's <c>Scheduler</c> and <c>NiceValue</c> for the sync threads): each bad field is
/// named with what was expected; a valid setting reaches the engine's options; with the privilege (root, as CI runs)
/// the engine's sender, receiver and heartbeat threads run under it, and so do the receive threads of every sync link
/// when a member has several.
/// </summary>
public sealed class SchedulerConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-scheduler-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string scheduler)
    {
        var config = JsonNode.Parse("""
            {
              "cluster": { "insecure": true, "members": [ { "id": 1, "address": "127.0.0.1:18116", "fullSyncPort": 18256 }, { "id": 2, "address": "127.0.0.1:18117", "fullSyncPort": 18257 } ] },
              "node": { "memberId": 1, "control": { "port": 19116 } },
              "dataPlane": { "source": "none" }
            }
            """)!.AsObject();
        config["sync"] = new JsonObject { ["scheduler"] = JsonNode.Parse(scheduler) };
        var path = Path.Combine(_dir, "node.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    public static TheoryData<string, string[]> BadSettings() => new()
    {
        { """{ "policy": "deadline" }""", ["sync.scheduler.policy: expected 'other', 'fifo' or 'rr', found 'deadline'"] },
        { """{ "policy": "fifo", "priority": 0 }""", ["sync.scheduler.priority: expected 1 to 99 with policy 'fifo', found 0"] },
        { """{ "policy": "rr", "priority": 100, "nice": -5 }""", ["sync.scheduler.priority: expected 1 to 99 with policy 'rr', found 100", "sync.scheduler.nice: expected 0 (no setting) with policy 'rr'"] },
        { """{ "policy": "other", "priority": 10 }""", ["sync.scheduler.priority: expected 0 (no setting) with policy 'other'"] },
        { """{ "nice": 20 }""", ["sync.scheduler.nice: expected -20 to 19, found 20"] },
        { """{ "nice": -21 }""", ["sync.scheduler.nice: expected -20 to 19, found -21"] },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void Load_BadSchedulerSetting_NamesTheFileTheFieldAndWhatWasExpected(string scheduler, string[] expected)
    {
        var path = Write(scheduler);

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        Assert.Equal(expected.Length, ex.Errors.Count);
        foreach (var e in expected)
        {
            Assert.True(ex.Errors.Any(x => x.StartsWith($"{path}: {e}", StringComparison.Ordinal)), $"expected '{e}' among:\n{string.Join("\n", ex.Errors)}");
        }
    }

    [Fact]
    public void Load_UnknownSchedulerField_NamesTheFieldsThatFit()
    {
        var path = Write("""{ "type": "fifo" }""");

        var ex = Assert.Throws<ConfigurationException>(() => NodeConfigLoader.Load(path));

        var error = Assert.Single(ex.Errors);
        Assert.StartsWith($"{path}: sync.scheduler.type: unknown setting; expected one of policy, priority, nice", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NoSchedulerSetting_EngineKeepsTheDefault()
    {
        var loaded = NodeConfigLoader.Load(Write("{}"));

        Assert.True(loaded.EngineOptions.Scheduler.IsDefault);
    }

    [Fact]
    public void Load_PositiveNice_NeedsNoPrivilegeAndReachesTheEngine()
    {
        var loaded = NodeConfigLoader.Load(Write("""{ "nice": 5 }"""));

        Assert.Equal(new SyncThreadScheduling { Policy = SyncSchedulingPolicy.Other, Nice = 5 }, loaded.EngineOptions.Scheduler);
    }

    [SkippableFact]
    public void Load_FifoWithCapSysNice_ReachesTheEngine()
    {
        Skip.IfNot(HasCapSysNice(), "needs root or CAP_SYS_NICE (CI runs as root)");

        var loaded = NodeConfigLoader.Load(Write("""{ "policy": "FIFO", "priority": 10 }"""));

        Assert.Equal(new SyncThreadScheduling { Policy = SyncSchedulingPolicy.Fifo, Priority = 10 }, loaded.EngineOptions.Scheduler);
    }

    [SkippableTheory]
    [InlineData(SyncSchedulingPolicy.Fifo, 1)]
    [InlineData(SyncSchedulingPolicy.RoundRobin, 2)]
    [InlineData(SyncSchedulingPolicy.Other, 0)]
    public void Start_WithScheduler_SenderReceiverAndHeartbeatThreadsRunUnderIt(SyncSchedulingPolicy policy, int kernelPolicy)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "thread scheduling is Linux only");
        Skip.IfNot(HasCapSysNice(), "needs root or CAP_SYS_NICE to raise a thread's priority (CI runs as root)");
        var scheduling = SchedulingFor(policy);
        using var a = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        using var b = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        a.SetPeers([b.LocalEndPoint]);
        b.SetPeers([a.LocalEndPoint]);
        using var engine = new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], Insecure = true, Scheduler = scheduling }, a, null);
        using var plain = new SyncEngine(new SyncEngineOptions { MemberId = 2, PeerMemberIds = [1], Insecure = true }, b, null);

        engine.Start();
        plain.Start();

        Assert.True(Wait.Until(() => engine.SenderThreadId != 0 && engine.ReceiverThreadId != 0 && engine.HeartbeatThreadId != 0
            && plain.SenderThreadId != 0 && plain.ReceiverThreadId != 0 && plain.HeartbeatThreadId != 0, TimeSpan.FromSeconds(10)), "the sync threads did not start");
        // The thread takes the setting as its first step, before it records its id: what /proc shows is final.
        AssertRunUnder([engine.SenderThreadId, engine.ReceiverThreadId, engine.HeartbeatThreadId], scheduling, kernelPolicy);
        AssertAsInherited([plain.SenderThreadId, plain.ReceiverThreadId, plain.HeartbeatThreadId]); // the default leaves a member's threads as the process made them
    }

    [SkippableTheory]
    [InlineData(SyncSchedulingPolicy.Fifo, 1)]
    [InlineData(SyncSchedulingPolicy.RoundRobin, 2)]
    [InlineData(SyncSchedulingPolicy.Other, 0)]
    public void Start_WithSchedulerOnTwoSyncLinks_EveryLinkReceiveThreadRunsUnderIt(SyncSchedulingPolicy policy, int kernelPolicy)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "thread scheduling is Linux only");
        Skip.IfNot(HasCapSysNice(), "needs root or CAP_SYS_NICE to raise a thread's priority (CI runs as root)");
        var scheduling = SchedulingFor(policy);
        // Two members on two sync links each (ids 1 and 2), as a node with `cluster.members[].links` runs them.
        var sockets = new UdpDatagramChannel[4];
        for (int i = 0; i < sockets.Length; i++)
        {
            sockets[i] = new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500);
        }

        sockets[0].SetPeers([sockets[2].LocalEndPoint]);
        sockets[1].SetPeers([sockets[3].LocalEndPoint]);
        sockets[2].SetPeers([sockets[0].LocalEndPoint]);
        sockets[3].SetPeers([sockets[1].LocalEndPoint]);
        var links = new MultiLinkChannel([new SyncLink(1, sockets[0]), new SyncLink(2, sockets[1])]);
        var plainLinks = new MultiLinkChannel([new SyncLink(1, sockets[2]), new SyncLink(2, sockets[3])]);
        using var engine = new SyncEngine(new SyncEngineOptions { MemberId = 1, PeerMemberIds = [2], Insecure = true, Scheduler = scheduling }, links, null);
        using var plain = new SyncEngine(new SyncEngineOptions { MemberId = 2, PeerMemberIds = [1], Insecure = true }, plainLinks, null);

        engine.Start();
        plain.Start();

        Assert.True(Wait.Until(() => links.ReceiveThreadIds.All(t => t != 0) && plainLinks.ReceiveThreadIds.All(t => t != 0) && engine.ReceiverThreadId != 0,
            TimeSpan.FromSeconds(10)), "the link receive threads did not start");
        Assert.Equal(2, links.ReceiveThreadIds.Count);
        // A link's thread takes the setting before it records its id (MultiLinkChannel.StartReceiving): what /proc shows is final.
        AssertRunUnder(links.ReceiveThreadIds, scheduling, kernelPolicy);
        AssertAsInherited(plainLinks.ReceiveThreadIds); // the default leaves the link threads as the process made them
    }

    /// <summary>Each thread runs under <paramref name="scheduling"/>: kernel policy, real-time priority, and nice −3 for <c>other</c>.</summary>
    private static void AssertRunUnder(IEnumerable<int> threadIds, SyncThreadScheduling scheduling, int kernelPolicy)
    {
        foreach (var tid in threadIds)
        {
            var (kernel, priority, nice) = ReadScheduling(tid);
            Assert.Equal(kernelPolicy, kernel);
            Assert.Equal(scheduling.Priority, priority);
            if (scheduling.Policy == SyncSchedulingPolicy.Other)
            {
                Assert.Equal(-3, nice);
            }
        }
    }

    /// <summary>Each thread runs as this (test) thread does: the process's own scheduling, untouched.</summary>
    private static void AssertAsInherited(IEnumerable<int> threadIds)
    {
        var inherited = ReadScheduling(ThreadCpu.CurrentThreadId());
        foreach (var tid in threadIds)
        {
            Assert.Equal(inherited, ReadScheduling(tid));
        }
    }

    /// <summary>Policy (0 other, 1 fifo, 2 rr), real-time priority and nice value of a thread of this process (/proc/self/task/TID/stat).</summary>
    private static (int Policy, int Priority, int Nice) ReadScheduling(int tid)
    {
        var stat = File.ReadAllText($"/proc/self/task/{tid.ToString(CultureInfo.InvariantCulture)}/stat");
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // Fields after the command name start at 3 (state): nice is field 19, rt_priority 40, policy 41.
        return (int.Parse(rest[41 - 3], CultureInfo.InvariantCulture), int.Parse(rest[40 - 3], CultureInfo.InvariantCulture), int.Parse(rest[19 - 3], CultureInfo.InvariantCulture));
    }

    private static bool HasCapSysNice()
    {
        var line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal)) : null;
        return line is not null && (Convert.ToUInt64(line["CapEff:".Length..].Trim(), 16) & (1UL << 23)) != 0;
    }

    /// <summary>The setting a thread-scheduling test applies: nice −3 for <c>Other</c>, else the policy at priority 7.</summary>
    private static SyncThreadScheduling SchedulingFor(SyncSchedulingPolicy policy) => policy == SyncSchedulingPolicy.Other
        ? new SyncThreadScheduling { Nice = -3 }
        : new SyncThreadScheduling { Policy = policy, Priority = 7 };
}
