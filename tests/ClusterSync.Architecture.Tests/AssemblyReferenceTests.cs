using System.Runtime.CompilerServices;

namespace ClusterSync.Architecture.Tests;

/// <summary>What the compiled assemblies reference: the compiler keeps only references that code uses.</summary>
public sealed class AssemblyReferenceTests
{
    [Fact]
    public void NodeAssembly_ReferencedAssemblies_NeitherCliNorTrainingNorPlotting()
    {
        var node = Assembly.Load("ClusterSync.Node");

        var referenced = node.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        Assert.Contains("ClusterSync.Core", referenced);
        var forbidden = referenced.Where(n => n is "clustersync" or "ClusterSync.Training"
            || n.StartsWith("ScottPlot", StringComparison.Ordinal) || n.StartsWith("SkiaSharp", StringComparison.Ordinal)).ToList();
        Assert.True(forbidden.Count == 0, "ClusterSync.Node references " + string.Join(", ", forbidden));
    }

    [Fact]
    public void NodeAssembly_Types_NoneInTheCliNamespace()
    {
        var node = Assembly.Load("ClusterSync.Node");

        var cli = Repository.TypesOf(node).Where(t => t.Namespace?.StartsWith("ClusterSync.Cli", StringComparison.Ordinal) == true).Select(t => t.FullName).ToList();

        Assert.True(cli.Count == 0, "types of namespace ClusterSync.Cli in ClusterSync.Node: " + string.Join(", ", cli));
    }

    [Fact]
    public void ProductionAssemblies_ReferencedClusterSyncAssemblies_FollowTheAllowedGraph()
    {
        var projectOf = Repository.ProductionAssemblies.ToDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal);
        var violations = new List<string>();
        foreach (var (project, assemblyName) in Repository.ProductionAssemblies)
        {
            var allowed = ProjectGraph.Allowed[project];
            foreach (var reference in Assembly.Load(assemblyName).GetReferencedAssemblies())
            {
                if (projectOf.TryGetValue(reference.Name!, out var target) && !allowed.Contains(target, StringComparer.Ordinal))
                {
                    violations.Add($"{assemblyName} -> {reference.Name}");
                }
            }
        }

        Assert.True(violations.Count == 0, "assembly references outside the allowed graph:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void ProductionAssemblies_InternalsVisibleTo_OnlyTestsAndBenchmarks()
    {
        var production = Repository.ProductionAssemblies.Values.ToHashSet(StringComparer.Ordinal);

        var grants = Repository.LoadProductionAssemblies()
            .SelectMany(a => a.GetCustomAttributes<InternalsVisibleToAttribute>().Select(v => (From: a.GetName().Name!, To: v.AssemblyName)))
            .ToList();

        Assert.NotEmpty(grants); // the tests still see internals
        // The one exception: the deterministic fault simulator (test machinery behind `clustersync soak`, never loaded by
        // a node) steps the engine through internal seams (SyncEngine.Stepped.cs) that are no public API.
        var forbidden = grants.Where(g => !(g.From == "ClusterSync.Core" && g.To == "ClusterSync.Simulation"))
            .Where(g => production.Contains(g.To)
            || !(g.To.EndsWith(".Tests", StringComparison.Ordinal) || g.To is "ClusterSync.IntegrationTests" or "ClusterSync.Benchmarks"))
            .Select(g => $"{g.From} -> {g.To}").ToList();
        Assert.True(forbidden.Count == 0, "InternalsVisibleTo beyond tests and benchmarks: " + string.Join(", ", forbidden));
    }
}
