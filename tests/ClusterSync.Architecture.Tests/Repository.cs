namespace ClusterSync.Architecture.Tests;

/// <summary>The repository the tests run from, and the production assemblies (loaded from the test's own output).</summary>
internal static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>Assembly name of each production project (the CLI's assembly is <c>clustersync</c>).</summary>
    public static IReadOnlyDictionary<string, string> ProductionAssemblies { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ClusterSync.Abstractions"] = "ClusterSync.Abstractions",
        ["ClusterSync.Core"] = "ClusterSync.Core",
        ["ClusterSync.Workload"] = "ClusterSync.Workload",
        ["ClusterSync.Adaptive"] = "ClusterSync.Adaptive",
        ["ClusterSync.Telemetry"] = "ClusterSync.Telemetry",
        ["ClusterSync.Node"] = "ClusterSync.Node",
        ["ClusterSync.Cli"] = "clustersync",
        ["ClusterSync.Training"] = "ClusterSync.Training",
    };

    public static IEnumerable<Assembly> LoadProductionAssemblies() => ProductionAssemblies.Values.Select(n => Assembly.Load(n));

    public static IEnumerable<Type> TypesOf(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            return ex.Types.Where(t => t is not null)!;
        }
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"no ClusterSync.sln above {AppContext.BaseDirectory}");
    }
}
