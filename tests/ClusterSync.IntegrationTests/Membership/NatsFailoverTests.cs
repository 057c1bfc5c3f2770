using System.Diagnostics;
using ClusterSync.Engine;
using ClusterSync.IntegrationTests.Transport;
using ClusterSync.Membership;

namespace ClusterSync.IntegrationTests.Membership;

/// <summary>
/// High availability with every member on the NATS transport plugin (a real nats-server on loopback): the Active dies,
/// the best Standby commits its replica, which holds every synchronized connection, and the cluster goes on over NATS.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NatsFailoverTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [SkippableFact]
    public void ActiveKilled_StandbyOverNatsTakesOverWithNoSynchronizedConnectionLost()
    {
        using var cluster = new LoopbackCluster(3, transport: TestTransport.Create(TestTransport.NatsName, nats));
        var sinks = new List<InMemoryReplicaSink>();
        var controllers = new List<MembershipController>();
        var history = new List<string>();
        var sw = Stopwatch.StartNew();
        byte[] priorities = [200, 150, 100];
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var sink = new InMemoryReplicaSink();
                sinks.Add(sink);
                var controller = new MembershipController(cluster.Members[i], new MembershipOptions { Priority = priorities[i] }, sink);
                int member = i + 1;
                controller.StateChanged += (from, to) => { lock (history) { history.Add($"{sw.ElapsedMilliseconds}ms m{member}: {from}->{to}"); } };
                controllers.Add(controller);
            }

            string Story()
            {
                lock (history)
                {
                    return string.Join("; ", history);
                }
            }

            Assert.True(LoopbackCluster.WaitUntil(() => controllers[0].State == MemberState.Active && controllers[1].State == MemberState.Standby
                && controllers[2].State == MemberState.Standby, TimeSpan.FromSeconds(10)), Story());
            var active = cluster.Members[0];
            LoopbackCluster.Drive(active, 30_000, seed: 17, population: 10_000);
            Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(active, cluster.Members[1]) == 0
                && LoopbackCluster.Differences(active, cluster.Members[2]) == 0, TimeSpan.FromSeconds(30)),
                $"differences {LoopbackCluster.Differences(active, cluster.Members[1])}, {LoopbackCluster.Differences(active, cluster.Members[2])}");
            var synced = active.SnapshotTable();
            Assert.True(synced.Count > 1000);
            Assert.True(LoopbackCluster.WaitUntil(() => FailoverTests.SeesActive(cluster.Members[1], 1), TimeSpan.FromSeconds(5)), "member 2 never heard member 1 as Active");

            // Kill the Active: its engine and its NATS connection stop dead (no goodbye), as with SIGKILL.
            var killed = Stopwatch.StartNew();
            active.Dispose();
            var deadline = active.Options.DeadInterval + TimeSpan.FromMilliseconds(200);
            Assert.True(LoopbackCluster.WaitUntil(() => controllers[1].State == MemberState.Active, TimeSpan.FromSeconds(5)), "no takeover: " + Story());
            var takeover = killed.Elapsed;
            Assert.True(takeover <= deadline + TimeSpan.FromMilliseconds(100),
                $"takeover after {takeover.TotalMilliseconds:F0} ms (dead interval + 200 ms = {deadline.TotalMilliseconds:F0} ms): {Story()}");
            Assert.Equal(MemberState.Standby, controllers[2].State);

            // No synchronized connection lost: the new Active committed every one of them, in the state the old Active had.
            var committed = sinks[1].Committed;
            Assert.Equal(synced.Count, committed.Count);
            foreach (var (key, entry) in synced)
            {
                Assert.True(committed.TryGetValue(key, out var c) && c.SameState(entry), $"{key} missing from the committed table");
            }

            // The new Active serves the taken-over connections; its updates reach the remaining Standby over NATS.
            LoopbackCluster.Drive(cluster.Members[1], 5_000, seed: 17, population: 10_000);
            LoopbackCluster.AssertIdentical(cluster.Members[1], cluster.Members[2], TimeSpan.FromSeconds(30));
            Assert.Contains(cluster.Members[2].SnapshotTable(), kv => kv.Value.Owner == 2);
        }
        finally
        {
            foreach (var c in controllers)
            {
                c.Dispose();
            }
        }
    }
}
