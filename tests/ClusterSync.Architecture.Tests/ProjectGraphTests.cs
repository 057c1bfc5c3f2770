namespace ClusterSync.Architecture.Tests;

/// <summary>The project files' references against the allowed graph (<see cref="ProjectGraph"/>).</summary>
public sealed class ProjectGraphTests
{
    private static readonly string s_root = Repository.Root;

    [Fact]
    public void ProjectReferences_AllProjects_NoForbiddenEdge()
    {
        var edges = ProjectGraph.Projects(s_root).SelectMany(p => ProjectGraph.EdgesOf(s_root, p)).ToList();

        // The reader sees the graph at all (a parser that finds nothing would pass vacuously).
        Assert.Contains(edges, e => e is { From: "ClusterSync.Node", To: "ClusterSync.Core" });
        Assert.Contains(edges, e => e is { From: "ClusterSync.Cli", To: "ClusterSync.Node" });
        Assert.Contains(edges, e => e is { From: "Transport.Nats", To: "ClusterSync.Abstractions" }); // from plugins/Directory.Build.props
        var violations = edges.Select(e => ProjectGraph.Violation(s_root, e)).OfType<string>().ToList();
        Assert.True(violations.Count == 0, "forbidden project references:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void ProductionProjects_All_ListedInTheAllowedGraph()
    {
        var missing = ProjectGraph.Projects(s_root)
            .Where(p => ProjectGraph.KindOf(s_root, p) == ProjectGraph.Kind.Production)
            .Select(Path.GetFileNameWithoutExtension)
            .Where(n => !ProjectGraph.Allowed.ContainsKey(n!))
            .ToList();

        Assert.True(missing.Count == 0, "production projects missing from ProjectGraph.Allowed: " + string.Join(", ", missing));
    }

    [Theory]
    [InlineData("src/ClusterSync.Node/ClusterSync.Node.csproj", "src/ClusterSync.Cli/ClusterSync.Cli.csproj", false)]
    [InlineData("src/ClusterSync.Node/ClusterSync.Node.csproj", "training/ClusterSync.Training/ClusterSync.Training.csproj", false)]
    [InlineData("src/ClusterSync.Core/ClusterSync.Core.csproj", "src/ClusterSync.Workload/ClusterSync.Workload.csproj", false)]
    [InlineData("src/ClusterSync.Adaptive/ClusterSync.Adaptive.csproj", "src/ClusterSync.Telemetry/ClusterSync.Telemetry.csproj", false)]
    [InlineData("src/ClusterSync.Workload/ClusterSync.Workload.csproj", "src/ClusterSync.Adaptive/ClusterSync.Adaptive.csproj", false)]
    [InlineData("plugins/Transport.Nats/Transport.Nats.csproj", "src/ClusterSync.Core/ClusterSync.Core.csproj", false)]
    [InlineData("src/ClusterSync.Node/ClusterSync.Node.csproj", "plugins/Protocol.Ftp/Protocol.Ftp.csproj", true)]
    [InlineData("src/ClusterSync.Cli/ClusterSync.Cli.csproj", "plugins/Protocol.Ftp/Protocol.Ftp.csproj", false)]
    public void Violation_ForbiddenEdge_Named(string from, string to, bool buildOrderOnly)
    {
        var edge = new ProjectEdge(Path.GetFileNameWithoutExtension(from), Path.Combine(s_root, from), Path.GetFileNameWithoutExtension(to), Path.Combine(s_root, to), buildOrderOnly);

        Assert.NotNull(ProjectGraph.Violation(s_root, edge));
    }

    [Theory]
    [InlineData("src/ClusterSync.Cli/ClusterSync.Cli.csproj", "src/ClusterSync.Node/ClusterSync.Node.csproj", false)]
    [InlineData("src/ClusterSync.Node/ClusterSync.Node.csproj", "src/ClusterSync.Adaptive/ClusterSync.Adaptive.csproj", false)]
    [InlineData("training/ClusterSync.Training/ClusterSync.Training.csproj", "src/ClusterSync.Workload/ClusterSync.Workload.csproj", false)]
    [InlineData("src/ClusterSync.Cli/ClusterSync.Cli.csproj", "plugins/Protocol.Ftp/Protocol.Ftp.csproj", true)]
    [InlineData("tests/ClusterSync.IntegrationTests/ClusterSync.IntegrationTests.csproj", "src/ClusterSync.Cli/ClusterSync.Cli.csproj", false)]
    public void Violation_AllowedEdge_Null(string from, string to, bool buildOrderOnly)
    {
        var edge = new ProjectEdge(Path.GetFileNameWithoutExtension(from), Path.Combine(s_root, from), Path.GetFileNameWithoutExtension(to), Path.Combine(s_root, to), buildOrderOnly);

        Assert.Null(ProjectGraph.Violation(s_root, edge));
    }
}
