namespace ClusterSync.Workload;

/// <summary>How a service's connection lifetimes are distributed: a log-normal body and a Pareto tail.</summary>
/// <param name="MedianSeconds">Median of the log-normal body.</param>
/// <param name="Sigma">Spread of the log-normal body (natural log).</param>
/// <param name="TailShare">Share of connections drawn from the Pareto tail instead.</param>
/// <param name="TailScaleSeconds">Pareto scale (the smallest tail lifetime).</param>
/// <param name="TailAlpha">Pareto shape (smaller is heavier).</param>
/// <param name="MaxSeconds">Lifetimes are capped here (the trace's idle timeouts).</param>
public sealed record LifetimeShape(double MedianSeconds, double Sigma, double TailShare, double TailScaleSeconds, double TailAlpha, double MaxSeconds)
{
    public double Sample(Random random)
    {
        double l;
        if (random.NextDouble() < TailShare)
        {
            double u = 1.0 - random.NextDouble();
            l = TailScaleSeconds / Math.Pow(u, 1.0 / TailAlpha);
        }
        else
        {
            l = MedianSeconds * Math.Exp(Sigma * Normal(random));
        }

        return Math.Clamp(l, 0.0005, MaxSeconds);
    }

    private static double Normal(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}

/// <summary>Who opens the connections of a service, seen from the protected network.</summary>
public enum ServiceDirection : byte
{
    /// <summary>Internal clients to external servers.</summary>
    Outbound,
    /// <summary>External clients to internal servers.</summary>
    Inbound,
    /// <summary>Internal to internal.</summary>
    Internal,
}

/// <summary>
/// One service of a workload: protocol, server ports, share of new connections, direction, lifetime shape,
/// how its rate follows the day, and its bytes per second.
/// </summary>
public sealed record ServiceProfile(
    string Name,
    byte Protocol,
    ushort[] Ports,
    double Weight,
    ServiceDirection Direction,
    LifetimeShape Lifetime,
    double DiurnalAmplitude,
    double BytesPerSecond)
{
    /// <summary>True for scanners: destination ports are random, not <see cref="Ports"/>.</summary>
    public bool RandomPorts { get; init; }

    /// <summary>Per service hour of the day (UTC) at which its rate peaks.</summary>
    public double PeakHour { get; init; } = 14;
}

/// <summary>
/// The service mix of generated workloads: the one source of truth for which services exist, their ports and
/// their lifetimes. <see cref="TraceGenerator"/> draws whole connections from it; <see cref="ChangeGenerator"/>
/// cycles over its primary ports.
/// </summary>
public sealed class ServiceMix
{
    public ServiceMix(IReadOnlyList<ServiceProfile> services)
    {
        if (services.Count == 0)
        {
            throw new ArgumentException("A service mix needs at least one service.", nameof(services));
        }

        Services = services;
        var cumulative = new double[services.Count];
        double sum = 0;
        for (int i = 0; i < services.Count; i++)
        {
            sum += services[i].Weight;
            cumulative[i] = sum;
        }

        _cumulative = cumulative;
        _total = sum;
        PrimaryPorts = services.Where(s => !s.RandomPorts).Select(s => (s.Protocol, s.Ports[0])).ToArray();
    }

    private readonly double[] _cumulative;
    private readonly double _total;

    public IReadOnlyList<ServiceProfile> Services { get; }

    /// <summary>(protocol, first port) of every service with fixed ports, in mix order.</summary>
    public (byte Protocol, ushort Port)[] PrimaryPorts { get; }

    /// <summary>Picks a service by weight, with each weight scaled by its diurnal factor at <paramref name="hourOfDay"/>.</summary>
    public ServiceProfile Pick(Random random, double hourOfDay)
    {
        // Rejection: pick by base weight, accept with the service's diurnal factor (all factors are in (0, 1]).
        for (int attempt = 0; attempt < 64; attempt++)
        {
            var s = PickByWeight(random);
            if (random.NextDouble() < DiurnalFactor(s, hourOfDay))
            {
                return s;
            }
        }

        return PickByWeight(random);
    }

    /// <summary>A service's relative rate at an hour: 1 at its peak, 1 - 2·amplitude at the opposite hour.</summary>
    public static double DiurnalFactor(ServiceProfile s, double hourOfDay)
    {
        double phase = 2 * Math.PI * (hourOfDay - s.PeakHour) / 24.0;
        return 1.0 - s.DiurnalAmplitude * (1.0 - Math.Cos(phase));
    }

    private ServiceProfile PickByWeight(Random random)
    {
        double r = random.NextDouble() * _total;
        int i = Array.BinarySearch(_cumulative, r);
        if (i < 0)
        {
            i = ~i;
        }

        return Services[Math.Min(i, Services.Count - 1)];
    }

    private const byte Tcp = 6;
    private const byte Udp = 17;

    /// <summary>
    /// The default mix: roughly an enterprise edge — mostly web, much short DNS, long SSH and database sessions,
    /// short SMB, mail, long VoIP signalling, NTP, long streams and bursts of scanner probes.
    /// </summary>
    public static ServiceMix Default { get; } = new(
    [
        new("web", Tcp, [443, 80, 8080], 38, ServiceDirection.Outbound, new(0.8, 1.3, 0.08, 20, 1.3, 3600), 0.4, 40_000),
        new("dns", Udp, [53], 22, ServiceDirection.Outbound, new(0.03, 0.9, 0.01, 2, 2.0, 30), 0.3, 2_000),
        new("ssh", Tcp, [22], 2, ServiceDirection.Inbound, new(4, 1.5, 0.35, 60, 1.1, 14400), 0.2, 3_000),
        new("database", Tcp, [5432, 3306, 1433, 6379], 5, ServiceDirection.Internal, new(0.2, 1.0, 0.55, 120, 1.2, 28800), 0.1, 20_000),
        new("smb", Tcp, [445], 6, ServiceDirection.Internal, new(0.3, 1.0, 0.05, 30, 1.4, 7200), 0.5, 60_000) { PeakHour = 11 },
        new("mail", Tcp, [25, 587, 993], 4, ServiceDirection.Inbound, new(2.5, 0.9, 0.15, 60, 1.3, 3600), 0.3, 8_000),
        new("sip", Udp, [5060], 2, ServiceDirection.Outbound, new(90, 1.1, 0.2, 300, 1.5, 7200), 0.5, 1_500) { PeakHour = 10 },
        new("ntp", Udp, [123], 5, ServiceDirection.Outbound, new(0.05, 0.6, 0.0, 1, 2.0, 10), 0.0, 200),
        new("streaming", Tcp, [1935, 554, 8443], 3, ServiceDirection.Outbound, new(60, 1.6, 0.4, 300, 1.1, 14400), 0.6, 400_000) { PeakHour = 20 },
        new("scanner", Tcp, [0], 13, ServiceDirection.Inbound, new(0.05, 1.2, 0.01, 3, 2.0, 60), 0.0, 100) { RandomPorts = true },
    ]);
}
