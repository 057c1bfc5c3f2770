using System.Globalization;

namespace ClusterSync.Workload.Trace;

/// <summary>What <see cref="TraceGenerator"/> produces.</summary>
public sealed record TraceGeneratorOptions
{
    public int Seed { get; init; } = 1;

    /// <summary>Start of the trace (seconds since the Unix epoch, UTC). Default: 2026-01-05 00:00 UTC, a Monday.</summary>
    public double StartUnixSeconds { get; init; } = 1_767_571_200;

    public double SpanSeconds { get; init; } = 86_400;

    /// <summary>Mean rate of new connections over a day, bursts not counted.</summary>
    public double ConnectionsPerSecond { get; init; } = 5;

    /// <summary>Whole-traffic diurnal swing: the rate peaks at 14:00 UTC at (1 + a) times its mean and bottoms at (1 - a).</summary>
    public double DiurnalAmplitude { get; init; } = 0.5;

    /// <summary>Bursts per hour: a scanner sweeping ports or a client opening many short connections at once.</summary>
    public double BurstsPerHour { get; init; } = 6;

    public ServiceMix Mix { get; init; } = ServiceMix.Default;

    /// <summary>Every problem, with its option name.</summary>
    public IEnumerable<string> Validate()
    {
        if (!(SpanSeconds > 0 && SpanSeconds <= 366 * 86_400.0))
        {
            yield return $"--span: expected seconds in (0, {366 * 86_400}], found {SpanSeconds.ToString(CultureInfo.InvariantCulture)}";
        }

        if (!(ConnectionsPerSecond > 0 && ConnectionsPerSecond <= 100_000))
        {
            yield return $"--rate: expected connections per second in (0, 100000], found {ConnectionsPerSecond.ToString(CultureInfo.InvariantCulture)}";
        }

        if (!(DiurnalAmplitude >= 0 && DiurnalAmplitude < 1))
        {
            yield return $"--diurnal: expected an amplitude in [0, 1), found {DiurnalAmplitude.ToString(CultureInfo.InvariantCulture)}";
        }

        if (!(BurstsPerHour >= 0 && BurstsPerHour <= 3600))
        {
            yield return $"--bursts-per-hour: expected [0, 3600], found {BurstsPerHour.ToString(CultureInfo.InvariantCulture)}";
        }

        if (!(StartUnixSeconds >= 0 && StartUnixSeconds < 4_102_444_800))
        {
            yield return $"--start: expected a time between 1970 and 2100, found {StartUnixSeconds.ToString(CultureInfo.InvariantCulture)}";
        }
    }
}

/// <summary>
/// Seeded synthetic connection workloads for traces: arrivals follow a diurnal rate (non-homogeneous Poisson by
/// thinning) plus bursts; each connection's service comes from the <see cref="ServiceMix"/> (weighted, with the
/// service's own diurnal swing), its lifetime from that service's heavy-tailed shape (scaled per server port), its
/// addresses from the service's direction. The same options give the same trace.
/// </summary>
public static class TraceGenerator
{
    public static List<TraceRecord> Generate(TraceGeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var random = new Random(options.Seed);
        var mix = options.Mix;
        var list = new List<TraceRecord>((int)Math.Min(10_000_000, options.SpanSeconds * options.ConnectionsPerSecond * 1.1));
        double a = options.DiurnalAmplitude;
        double maxRate = options.ConnectionsPerSecond * (1 + a);
        double t = 0;
        while (true)
        {
            t += -Math.Log(1.0 - random.NextDouble()) / maxRate;
            if (t >= options.SpanSeconds)
            {
                break;
            }

            double start = options.StartUnixSeconds + t;
            double hour = HourOfDay(start);
            double g = 1 + a * Math.Cos(2 * Math.PI * (hour - 14) / 24.0);
            if (random.NextDouble() * (1 + a) >= g)
            {
                continue;
            }

            var service = mix.Pick(random, hour);
            list.Add(Connection(random, service, start, SourceFor(random, service), DestinationPortFor(random, service)));
        }

        if (options.BurstsPerHour > 0)
        {
            double burstRate = options.BurstsPerHour / 3600.0;
            var scanner = mix.Services.FirstOrDefault(s => s.RandomPorts);
            var web = mix.Services[0];
            for (double b = -Math.Log(1.0 - random.NextDouble()) / burstRate; b < options.SpanSeconds; b += -Math.Log(1.0 - random.NextDouble()) / burstRate)
            {
                var service = scanner is not null && random.NextDouble() < 0.6 ? scanner : web;
                int n = 20 + random.Next(181);
                string source = SourceFor(random, service);
                ushort firstPort = (ushort)(1 + random.Next(60_000));
                for (int i = 0; i < n && b + (i * 0.01) < options.SpanSeconds; i++)
                {
                    double start = options.StartUnixSeconds + b + (random.NextDouble() * 2.0);
                    ushort dport = service.RandomPorts ? (ushort)(firstPort + i) : service.Ports[0];
                    list.Add(Connection(random, service, start, source, dport));
                }
            }
        }

        list.Sort(static (x, y) => x.StartUnixSeconds.CompareTo(y.StartUnixSeconds));
        return list;
    }

    public static double HourOfDay(double unixSeconds)
    {
        double s = unixSeconds % 86_400.0;
        return (s < 0 ? s + 86_400.0 : s) / 3600.0;
    }

    private static TraceRecord Connection(Random random, ServiceProfile service, double start, string source, ushort dport)
    {
        // Later ports of a service live shorter (e.g. https > http > alt-http; pooled postgres > redis).
        int portIndex = Math.Max(0, Array.IndexOf(service.Ports, dport));
        double lifetime = service.Lifetime.Sample(random) * Math.Pow(0.5, portIndex);
        lifetime = Math.Round(lifetime, 6);
        double volume = service.BytesPerSecond * (0.2 + random.NextDouble()) * Math.Max(lifetime, 0.01);
        long bytesIn = (long)(volume * 0.8) + 60;
        long bytesOut = (long)(volume * 0.2) + 60;
        long packetsIn = 1 + (bytesIn / 1200);
        long packetsOut = 1 + (bytesOut / 600);
        if (service.RandomPorts)
        {
            bytesIn = random.NextDouble() < 0.9 ? 0 : 60;
            packetsIn = bytesIn == 0 ? 0 : 1;
            bytesOut = 60;
            packetsOut = 1;
        }

        string destination = DestinationFor(random, service);
        ushort sport = service.Protocol == 17 && service.Ports[0] is 123 or 5060 && random.NextDouble() < 0.5
            ? service.Ports[0]
            : (ushort)(32768 + random.Next(28_232));
        return new TraceRecord(Math.Round(start, 6), lifetime, service.Protocol, source, sport, destination, dport, service.Name,
            bytesOut, bytesIn, packetsOut, packetsIn);
    }

    private static ushort DestinationPortFor(Random random, ServiceProfile service)
    {
        if (service.RandomPorts)
        {
            return (ushort)(1 + random.Next(65_535));
        }

        // The first port is the most common: weights 1, 1/2, 1/4, ...
        int i = 0;
        while (i < service.Ports.Length - 1 && random.NextDouble() < 0.4)
        {
            i++;
        }

        return service.Ports[i];
    }

    private static string SourceFor(Random random, ServiceProfile service) => service.Direction switch
    {
        ServiceDirection.Inbound => External(random),
        _ => string.Create(CultureInfo.InvariantCulture, $"10.1.{random.Next(8)}.{1 + random.Next(250)}"),
    };

    private static string DestinationFor(Random random, ServiceProfile service) => service.Direction switch
    {
        ServiceDirection.Outbound => External(random),
        _ => string.Create(CultureInfo.InvariantCulture, $"10.0.0.{1 + random.Next(40)}"),
    };

    private static string External(Random random)
        => string.Create(CultureInfo.InvariantCulture, $"{(random.Next(2) == 0 ? "198.51.100" : "203.0.113")}.{1 + random.Next(250)}");
}
