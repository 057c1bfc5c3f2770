using System.Diagnostics;
using System.Text.Json;
using ClusterSync.IntegrationTests.Transport;
using Xunit.Abstractions;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// <c>clustersync node</c> processes with <c>cluster.transport: nats</c>: the node finds the NATS transport plugin in its
/// plugin directory by name, joins by full sync over NATS streams, replicates deltas over NATS subjects, and fails over
/// with every synchronized connection committed.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class NatsNodeProcessTests(NatsServerFixture nats, ITestOutputHelper log) : IClassFixture<NatsServerFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-nats-node-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };

    public void Dispose()
    {
        _http.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    [SkippableFact]
    public async Task TwoNodeProcessesOnNats_JoinFailoverAndCommit_NoSynchronizedConnectionLost()
    {
        Skip.If(nats.SkipReason is not null, nats.SkipReason);
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);
        string root = $"clustersync.test{Environment.ProcessId}.{Guid.NewGuid():N}";
        var cluster = new FailoverProcessTests.Cluster(2) { Transport = ("nats", m => $"{nats.Url}/{root}.m{m}") };
        var config1 = cluster.Write(_dir, 1, """{"source": "generator", "generator": {"seed": 21, "connections": 5000, "changesPerSecond": 4000, "maxChanges": 12000}}""");
        var config2 = cluster.Write(_dir, 2, """{"source": "none"}""");
        NodeProcess? n1 = null, n2 = null;
        try
        {
            n1 = NodeProcess.Start("node", "--config", config1);
            await FailoverProcessTests.WaitUntilAsync(async () => FailoverProcessTests.MemberState(await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(1))) == "Active", "member 1 Active", n1);
            n2 = NodeProcess.Start("node", "--config", config2);
            await FailoverProcessTests.WaitUntilAsync(async () => FailoverProcessTests.MemberState(await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(2))) == "Standby", "member 2 Standby", n1, n2);
            var joined = (await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(2)))!.Value;
            Assert.True(joined.GetProperty("fullSync").GetProperty("full_sync_received").GetInt64() >= 1, "member 2 Standby without a full sync over NATS");

            JsonElement last = default;
            await FailoverProcessTests.WaitUntilAsync(async () =>
            {
                if (await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(1)) is not { } s)
                {
                    return false;
                }

                last = s;
                ulong sent = s.GetProperty("lastDataSequence").GetUInt64();
                return s.GetProperty("dataPlane").GetProperty("finished").GetBoolean() && s.GetProperty("pending").GetInt32() == 0
                    && s.GetProperty("peers").EnumerateArray().All(p => p.GetProperty("ackedThrough").GetUInt64() == sent);
            }, "member 1 finished and acknowledged over NATS", n1, n2);
            var before = FailoverProcessTests.Digest(last);
            Assert.True(before.Count > 2000, $"member 1 holds only {before.Count} connections");
            var replica = FailoverProcessTests.Digest((await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(2)))!.Value);
            Assert.Equal(before, replica);

            var clock = Stopwatch.StartNew();
            n1.Kill();
            JsonElement? active = null;
            await FailoverProcessTests.WaitUntilAsync(async () =>
            {
                active = await FailoverProcessTests.StatusAsync(_http, cluster.Endpoint(2));
                return FailoverProcessTests.MemberState(active) == "Active";
            }, "member 2 Active after the kill", n2);
            log.WriteLine($"member 2 Active {clock.ElapsedMilliseconds} ms after SIGKILL of member 1; {before.Count} connections over NATS");
            Assert.Equal(before, FailoverProcessTests.Digest(active!.Value.GetProperty("membership").GetProperty("committed")));
        }
        finally
        {
            foreach (var n in new[] { n1, n2 })
            {
                if (n is not null)
                {
                    await n.DisposeAsync();
                }
            }
        }
    }
}
