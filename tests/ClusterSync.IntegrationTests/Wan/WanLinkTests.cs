using System.Diagnostics;

namespace ClusterSync.IntegrationTests.Wan;

/// <summary>
/// Delta sync over a WAN-like path (100 ± 20 ms one way, 5 % loss each way, real UDP underneath): the NACK pacing
/// follows the measured round trip, so a lost datagram is asked for about once per round trip instead of once per
/// NACK interval (20 ms, a tenth of this round trip).
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class WanLinkTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_load = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task WanLink_2000ChangesPerSecondForAMinute_NoFalseDeathNoResync_RetransmissionsAtMost30PercentAndTablesEqual()
    {
        var links = new List<WanLinkChannel>();
        using var cluster = new LoopbackCluster(2,
            configure: o => o with { HeartbeatInterval = TimeSpan.FromMilliseconds(100), DeadAfterMissedHeartbeats = 5, TableCapacity = 1 << 16 },
            wrap: (i, channel) =>
            {
                var link = new WanLinkChannel(channel, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(20), loss: 0.05, seed: 77 + i);
                links.Add(link);
                return link;
            });
        var (active, standby) = (cluster.Members[0], cluster.Members[1]);
        Assert.True(LoopbackCluster.WaitUntil(() => standby.GetPeerStatus()[0].Live && active.GetPeerStatus()[0].Live, TimeSpan.FromSeconds(10)), "the members never heard each other");

        // 2,000 changes/s (20 every 10 ms) for a minute, bounded in count; both views of the other watched meanwhile.
        var generator = new Workload.ChangeGenerator(5, 20_000);
        var batch = new ConnectionEvent[20];
        int falseDeaths = 0;
        long changes = 0;
        var clock = Stopwatch.StartNew();
        using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(5)); // the offered rate's clock
        while (clock.Elapsed < s_load && changes < 200_000 && await pace.WaitForNextTickAsync())
        {
            long due = (long)(clock.Elapsed.TotalMilliseconds / 10);
            while (changes / batch.Length < due && changes < 200_000)
            {
                LoopbackCluster.SubmitNext(active, generator, batch);
                changes += batch.Length;
            }

            if (!standby.GetPeerStatus()[0].Live || !active.GetPeerStatus()[0].Live)
            {
                falseDeaths++;
            }
        }

        var loadEnded = clock.Elapsed;
        LoopbackCluster.AssertIdentical(active, standby, TimeSpan.FromSeconds(30));
        var settled = clock.Elapsed - loadEnded;

        var a = active.Counters;
        var s = standby.Counters;
        double ratio = a.Retransmissions / (double)Math.Max(1, a.DatagramsSent);
        output.WriteLine($"{changes:N0} changes in {loadEnded.TotalSeconds:F1} s; datagrams sent {a.DatagramsSent:N0}, retransmissions {a.Retransmissions:N0} ({ratio:P1}), " +
            $"NACK ranges sent by the standby {s.NackRangesSent:N0}, duplicates at the standby {s.DatagramsReceived - s.DatagramsAccepted:N0}; " +
            $"link drops {links[0].Dropped:N0} of {links[0].Offered:N0} / {links[1].Dropped:N0} of {links[1].Offered:N0}; " +
            $"tables equal {settled.TotalMilliseconds:F0} ms after the load stopped; round trip at the active {active.GetPeerStatus()[0].RoundTripMs:F1} ± {active.GetPeerStatus()[0].RoundTripVariationMs:F1} ms");
        Assert.True(changes > 100_000, $"only {changes} changes offered");
        Assert.InRange(active.GetPeerStatus()[0].RoundTripMs, 150, 600); // the 200 ms path, plus ack delay and a loaded machine
        Assert.Equal(0, falseDeaths);
        Assert.Equal(0, a.ResyncNeeded + s.ResyncNeeded);
        Assert.True(ratio <= 0.30, $"retransmissions {a.Retransmissions} are {ratio:P1} of the {a.DatagramsSent} datagrams sent (at most 30 %)");
    }
}
