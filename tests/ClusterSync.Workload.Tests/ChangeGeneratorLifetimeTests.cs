namespace ClusterSync.Workload.Tests;

/// <summary><see cref="ChangeGenerator.WithLifetimes"/>: connections live as their service of the mix does.</summary>
public sealed class ChangeGeneratorLifetimeTests
{
    [Fact]
    public void Next_WithLifetimes_DestroysEachConnectionWhenItsDrawnLifetimeHasPassed()
    {
        var g = ChangeGenerator.WithLifetimes(seed: 11, population: 50_000, ServiceMix.Default);
        var drawn = new Dictionary<ConnectionKey, (string Service, double Lifetime)>();
        g.Opened = (key, service, lifetime) => drawn.Add(key, (service.Name, lifetime));
        var created = new Dictionary<ConnectionKey, long>();
        var lived = new List<(string Service, double Drawn, long LivedMs)>();
        var change = default(ConnectionEvent);
        long nowMs = 1_700_000_000_000;
        for (int i = 0; i < 200_000; i++)
        {
            nowMs += i % 20 == 0 ? 1 : 0; // 20 changes per millisecond: 10 s of a 20,000 changes/s stream
            Assert.True(g.Next(ref change, nowMs));
            switch (change.Kind)
            {
                case ConnectionEventKind.New:
                    created.Add(change.Key, nowMs);
                    break;
                case ConnectionEventKind.Update:
                    Assert.True(created.ContainsKey(change.Key), "an update of a connection that is not alive");
                    break;
                case ConnectionEventKind.Destroy:
                    Assert.True(created.Remove(change.Key, out long at), "a destroy of a connection that is not alive");
                    lived.Add((drawn[change.Key].Service, drawn[change.Key].Lifetime, nowMs - at));
                    break;
            }
        }

        Assert.Equal(created.Count, g.LiveCount);
        Assert.True(lived.Count > 10_000, $"only {lived.Count} destroyed");
        // Destroyed when the drawn lifetime had passed (not before; at most 1 ms later at this rate, where destroys due queue behind).
        Assert.All(lived, l => Assert.InRange(l.LivedMs, Due(l.Drawn), Due(l.Drawn) + 50));
        // Per service heavy-tailed lifetimes: DNS is short, and the long-lived services are still alive far more often.
        double dnsMedianMs = lived.Where(l => l.Service == "dns").Select(l => (double)l.LivedMs).Order().ElementAt(lived.Count(l => l.Service == "dns") / 2);
        Assert.True(dnsMedianMs < 200, $"DNS median {dnsMedianMs} ms");
        var alive = created.Keys.Select(k => drawn[k].Service).ToList();
        Assert.True(alive.Count(s => s is "database" or "ssh" or "sip" or "streaming") > alive.Count(s => s is "dns" or "ntp" or "scanner") * 5);
    }

    private static long Due(double lifetimeSeconds) => Math.Max(1, (long)Math.Round(lifetimeSeconds * 1000));

    [Fact]
    public void Next_WithLifetimes_SameSeedSameStream()
    {
        var a = ChangeGenerator.WithLifetimes(3, 1000, ServiceMix.Default);
        var b = ChangeGenerator.WithLifetimes(3, 1000, ServiceMix.Default);
        var x = default(ConnectionEvent);
        var y = default(ConnectionEvent);
        for (int i = 0; i < 20_000; i++)
        {
            Assert.Equal(a.Next(ref x, 1000 + i), b.Next(ref y, 1000 + i));
            Assert.Equal(x.Kind, y.Kind);
            Assert.Equal(x.Key, y.Key);
        }
    }

    [Fact]
    public void Adopt_WithLifetimes_Throws()
    {
        var g = ChangeGenerator.WithLifetimes(3, 1000, ServiceMix.Default);
        Assert.Throws<InvalidOperationException>(() => g.Adopt([]));
    }
}
