using ClusterSync.Classification;

namespace ClusterSync.Policy;

/// <summary>
/// Configured service class: <c>policy</c> is <c>full</c>, <c>delayed</c> (with <c>delaySeconds</c>) or <c>none</c>;
/// <c>templates</c> turns connection templates on for the class (docs/templates.md).
/// </summary>
public sealed record ServiceClassOptions
{
    public string Name { get; init; } = "";
    public string Policy { get; init; } = "full";
    public double DelaySeconds { get; init; }

    /// <summary>Connection templates for this class's TCP and UDP connections (off when null).</summary>
    public TemplateOptions? Templates { get; init; }
}

/// <summary>
/// When a class makes templates: <see cref="Threshold"/> new connections of one shape (source, destination, destination
/// port, protocol, zone; any source port) within <see cref="WindowSeconds"/> make a template, which lives
/// <see cref="LifetimeSeconds"/> after the last connection of its shape.
/// </summary>
public sealed record TemplateOptions
{
    public bool Enabled { get; init; } = true;

    public int Threshold { get; init; } = 20;

    public double WindowSeconds { get; init; } = 10;

    public double LifetimeSeconds { get; init; } = 60;

    /// <summary>Every problem, each with its path under <paramref name="path"/>.</summary>
    public IEnumerable<string> Validate(string path)
    {
        if (Threshold is < 2 or > 1_000_000)
        {
            yield return $"{path}.threshold: expected a number of connections in [2, 1000000], found {Threshold}";
        }

        if (!(WindowSeconds > 0 && WindowSeconds <= 3600))
        {
            yield return $"{path}.windowSeconds: expected a number of seconds in (0, 3600], found {WindowSeconds}";
        }

        if (!(LifetimeSeconds >= 1 && LifetimeSeconds <= 86400))
        {
            yield return $"{path}.lifetimeSeconds: expected a number of seconds in [1, 86400], found {LifetimeSeconds}";
        }
    }
}

/// <summary>A port/protocol rule: connections of <c>protocol</c> to one of <c>ports</c> belong to <c>class</c>.</summary>
public sealed record ClassRuleOptions
{
    /// <summary><c>tcp</c>, <c>udp</c>, <c>icmp</c>, <c>icmpv6</c>, <c>sctp</c>, <c>any</c> or a protocol number.</summary>
    public string Protocol { get; init; } = "any";

    /// <summary>Destination ports: <c>80,443,8000-8080</c>; empty means every port.</summary>
    public string? Ports { get; init; }

    public string Class { get; init; } = "";
}

/// <summary>Service classes and the rules of the built-in port/protocol classifier.</summary>
public sealed record PolicyOptions
{
    public string DefaultClass { get; init; } = ServiceClassNames.Default;

    public IReadOnlyList<ServiceClassOptions> Classes { get; init; } =
    [
        new() { Name = ServiceClassNames.MissionCritical, Policy = "full" },
        new() { Name = ServiceClassNames.ShortLived, Policy = "delayed", DelaySeconds = 3 },
        new() { Name = ServiceClassNames.NonSync, Policy = "none" },
        new() { Name = ServiceClassNames.Default, Policy = "full" },
    ];

    public IReadOnlyList<ClassRuleOptions> Rules { get; init; } =
    [
        new() { Protocol = "tcp", Ports = "22,179,443,1433,1521,1723,3306,5060,5061,5432,6379", Class = ServiceClassNames.MissionCritical },
        new() { Protocol = "udp", Ports = "500,4500,5060", Class = ServiceClassNames.MissionCritical },
        new() { Protocol = "tcp", Ports = "80,8080,445,139", Class = ServiceClassNames.ShortLived },
        new() { Protocol = "udp", Ports = "53,123,137,138,161,5353", Class = ServiceClassNames.NonSync },
        new() { Protocol = "icmp", Class = ServiceClassNames.NonSync },
        new() { Protocol = "icmpv6", Class = ServiceClassNames.NonSync },
    ];

    /// <summary>Every problem, each with its path under <paramref name="path"/>.</summary>
    public IEnumerable<string> Validate(string path)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < Classes.Count; i++)
        {
            var c = Classes[i];
            var p = $"{path}.classes[{i}]";
            if (string.IsNullOrWhiteSpace(c.Name))
            {
                yield return $"{p}.name: a class needs a name";
            }
            else if (!names.Add(c.Name))
            {
                yield return $"{p}.name: duplicate class '{c.Name}'";
            }

            switch (c.Policy)
            {
                case "full" or "none":
                    break;
                case "delayed":
                    if (!(c.DelaySeconds > 0 && c.DelaySeconds <= 86400))
                    {
                        yield return $"{p}.delaySeconds: expected a number of seconds in (0, 86400] for a delayed class, found {c.DelaySeconds}";
                    }

                    break;
                default:
                    yield return $"{p}.policy: expected 'full', 'delayed' or 'none', found '{c.Policy}'";
                    break;
            }

            if (c.Templates is { } t)
            {
                foreach (var error in t.Validate($"{p}.templates"))
                {
                    yield return error;
                }
            }
        }

        if (Classes.Count > 250)
        {
            yield return $"{path}.classes: at most 250 classes, found {Classes.Count}";
        }

        if (!names.Contains(DefaultClass))
        {
            yield return $"{path}.defaultClass: '{DefaultClass}' is not one of the configured classes";
        }

        for (int i = 0; i < Rules.Count; i++)
        {
            var r = Rules[i];
            var p = $"{path}.rules[{i}]";
            if (PortProtocolClassifier.ParseProtocol(r.Protocol) is null)
            {
                yield return $"{p}.protocol: expected tcp, udp, icmp, icmpv6, sctp, any or a number 0-255, found '{r.Protocol}'";
            }

            if (r.Ports is not null && !PortProtocolClassifier.TryParsePorts(r.Ports, out _, out var error))
            {
                yield return $"{p}.ports: {error}";
            }

            if (!names.Contains(r.Class))
            {
                yield return $"{p}.class: '{r.Class}' is not one of the configured classes";
            }
        }
    }
}
