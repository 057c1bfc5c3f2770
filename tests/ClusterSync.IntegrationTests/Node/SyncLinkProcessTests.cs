using System.Diagnostics;
using System.Text.Json;

namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// Two node processes with two sync links each (link 1 on 127.0.0.1, link 2 on 127.0.0.2): both links come up and
/// traffic takes link 1; the Active stopped with SIGTERM says Down on its links and the Standby takes over well
/// before the dead interval (1 s here) would have told it.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class SyncLinkProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-links-node-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<JsonElement?> StatusAsync(int port)
    {
        if (!NodeProcess.ControlReady($"http://127.0.0.1:{port}"))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(await _http.GetStringAsync($"http://127.0.0.1:{port}/status"));
            return doc.RootElement.Clone();
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static bool LinksUpOnFirst(JsonElement status)
    {
        var links = status.GetProperty("peers")[0].GetProperty("links");
        return links.GetArrayLength() == 2
            && links[0].GetProperty("id").GetInt32() == 1 && links[0].GetProperty("up").GetBoolean() && links[0].GetProperty("carrying").GetBoolean()
            && links[1].GetProperty("id").GetInt32() == 2 && links[1].GetProperty("up").GetBoolean() && !links[1].GetProperty("carrying").GetBoolean();
    }

    [Fact]
    public async Task TwoLinkNodes_BothLinksUpTrafficOnLowest_SigtermedActiveReplacedBeforeDeadInterval()
    {
        var (code, output) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "keygen", "--out", Path.Combine(_dir, "cluster.key"));
        Assert.True(code == 0, output);
        int[] sync = [NodeProcess.FreeUdpPort(), NodeProcess.FreeUdpPort()];
        int[] fullSync = [NodeProcess.FreeTcpPort(), NodeProcess.FreeTcpPort()];
        int[] control = [NodeProcess.FreeTcpPort(), NodeProcess.FreeTcpPort()];
        string Config(int member, string dataPlane)
        {
            var path = Path.Combine(_dir, $"node{member}.json");
            File.WriteAllText(path, $$"""
                {
                  "cluster": {
                    "keyFile": "cluster.key",
                    "preemption": true,
                    "members": [
                      { "id": 1, "priority": 100, "fullSyncPort": {{fullSync[0]}},
                        "links": [ { "id": 1, "address": "127.0.0.1:{{sync[0]}}" }, { "id": 2, "address": "127.0.0.2:{{sync[0]}}" } ] },
                      { "id": 2, "priority": 90, "fullSyncPort": {{fullSync[1]}},
                        "links": [ { "id": 1, "address": "127.0.0.1:{{sync[1]}}" }, { "id": 2, "address": "127.0.0.2:{{sync[1]}}" } ] }
                    ]
                  },
                  "node": { "memberId": {{member}}, "control": { "port": {{control[member - 1]}} } },
                  "sync": { "tableCapacity": 16384, "heartbeatInterval": "200ms", "deadAfterMissedHeartbeats": 5 },
                  "dataPlane": {{dataPlane}}
                }
                """);
            return path;
        }

        await using var active = NodeProcess.Start("node", "--config", Config(1, """{"source": "generator", "generator": {"connections": 2000, "changesPerSecond": 2000}}"""));
        await using var standby = NodeProcess.Start("node", "--config", Config(2, """{"source": "none"}"""));
        try
        {
            var sw = Stopwatch.StartNew();
            JsonElement? s1 = null, s2 = null;
            while (sw.Elapsed < TimeSpan.FromSeconds(60))
            {
                Assert.False(active.HasExited || standby.HasExited, "a node exited");
                s1 = await StatusAsync(control[0]);
                s2 = await StatusAsync(control[1]);
                if (s1 is { } a && s2 is { } b && LinksUpOnFirst(a) && LinksUpOnFirst(b)
                    && a.GetProperty("membership").GetProperty("state").GetString() == "Active"
                    && b.GetProperty("membership").GetProperty("state").GetString() == "Standby"
                    && b.GetProperty("counters").GetProperty("updates_applied").GetInt64() > 1000)
                {
                    break;
                }

                await Task.Delay(50);
            }

            Assert.True(s1 is { } x && LinksUpOnFirst(x), $"member 1 links: {s1?.GetProperty("peers")}");
            Assert.True(s2 is { } y && LinksUpOnFirst(y), $"member 2 links: {s2?.GetProperty("peers")}");
            Assert.Equal("127.0.0.2:" + sync[0], s2!.Value.GetProperty("peers")[0].GetProperty("links")[1].GetProperty("address").GetString());
            var metrics = await _http.GetStringAsync($"http://127.0.0.1:{control[1]}/metrics");
            Assert.Contains("clustersync_link_up{peer=\"1\",link=\"2\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("clustersync_link_carrying{peer=\"1\",link=\"1\"} 1", metrics, StringComparison.Ordinal);

            var (statusCode, table) = await NodeProcess.RunAsync(TimeSpan.FromSeconds(30), "status", "--endpoint", $"http://127.0.0.1:{control[1]}");
            Assert.True(statusCode == 0, table);
            Assert.Contains("Sync links", table, StringComparison.Ordinal);
            Assert.Contains("127.0.0.2:" + sync[0], table, StringComparison.Ordinal);

            // SIGTERM the Active: its Down heartbeats make the Standby take over long before the 1 s dead interval.
            var stopped = Stopwatch.StartNew();
            await active.TerminateAsync();
            string? state = null;
            while (stopped.Elapsed < TimeSpan.FromSeconds(10))
            {
                state = (await StatusAsync(control[1]))?.GetProperty("membership").GetProperty("state").GetString();
                if (state == "Active")
                {
                    break;
                }

                await Task.Delay(10);
            }

            var takeover = stopped.Elapsed;
            Assert.Equal("Active", state);
            Assert.True(takeover < TimeSpan.FromMilliseconds(700), $"took over {takeover.TotalMilliseconds:F0} ms after SIGTERM (dead interval 1000 ms)");
            Assert.Equal(0, await active.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            Assert.Contains("sent heartbeats with state Down", active.Output, StringComparison.Ordinal);
        }
        catch
        {
            Console.WriteLine($"--- member 1 ---\n{active.Output}\n--- member 2 ---\n{standby.Output}");
            throw;
        }
    }
}
