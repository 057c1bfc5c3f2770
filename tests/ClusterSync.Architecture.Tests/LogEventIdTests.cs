using Microsoft.Extensions.Logging;

namespace ClusterSync.Architecture.Tests;

/// <summary><c>[LoggerMessage]</c> event ids: unique across the production assemblies, each inside its area's range (<see cref="LogEventIds"/>).</summary>
public sealed class LogEventIdTests
{
    private static readonly List<(int Id, string Namespace, string Where)> s_messages = Collect();

    [Fact]
    public void LoggerMessages_AllProductionAssemblies_EventIdsUnique()
    {
        Assert.True(s_messages.Count > 40, $"found only {s_messages.Count} [LoggerMessage] methods: is the attribute still in metadata?");

        var duplicates = s_messages.GroupBy(m => m.Id).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Where))}").ToList();

        Assert.True(duplicates.Count == 0, "duplicate [LoggerMessage] event ids:\n" + string.Join("\n", duplicates));
    }

    [Fact]
    public void LoggerMessages_AllProductionAssemblies_EventIdInsideTheRangeOfTheirArea()
    {
        var outside = new List<string>();
        foreach (var (id, ns, where) in s_messages)
        {
            var area = LogEventIds.Ranges.Where(r => ns == r.NamespacePrefix || ns.StartsWith(r.NamespacePrefix + ".", StringComparison.Ordinal))
                .OrderByDescending(r => r.NamespacePrefix.Length).FirstOrDefault();
            if (area.NamespacePrefix is null)
            {
                outside.Add($"{id} {where}: namespace {ns} has no range in LogEventIds");
            }
            else if (id < area.First || id > area.Last)
            {
                outside.Add($"{id} {where}: outside {area.NamespacePrefix} {area.First}-{area.Last}");
            }
        }

        Assert.True(outside.Count == 0, "event ids outside their area's range (LogEventIds):\n" + string.Join("\n", outside));
    }

    private static List<(int, string, string)> Collect()
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        return [.. Repository.LoadProductionAssemblies()
            .SelectMany(Repository.TypesOf)
            .SelectMany(t => t.GetMethods(all).Select(m => (Type: t, Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>())))
            .Where(x => x.Attribute is not null)
            .Select(x => (x.Attribute!.EventId, x.Type.Namespace ?? "", $"{x.Type.FullName}.{x.Method.Name}"))];
    }
}
