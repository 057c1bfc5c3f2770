using System.Xml.Linq;

namespace ClusterSync.Architecture.Tests;

/// <summary>One <c>ProjectReference</c> of one project file, resolved to the referenced project file.</summary>
internal sealed record ProjectEdge(string From, string FromPath, string To, string ToPath, bool BuildOrderOnly);

/// <summary>
/// The allowed project graph (issue 9): Abstractions ← Core ← (Adaptive, Telemetry) ← Node ← Cli; Workload → Core;
/// Adaptive and Telemetry use the trace records of Workload, the node its change generator; Training → Core,
/// Adaptive, Workload; plugins → Abstractions only; tests anything. A project may reference a lower layer directly.
/// </summary>
internal static class ProjectGraph
{
    private const string Abstractions = "ClusterSync.Abstractions";
    private const string Core = "ClusterSync.Core";
    private const string Workload = "ClusterSync.Workload";
    private const string Adaptive = "ClusterSync.Adaptive";
    private const string Telemetry = "ClusterSync.Telemetry";
    private const string Node = "ClusterSync.Node";
    private const string Training = "ClusterSync.Training";
    private const string Simulation = "ClusterSync.Simulation";
    private const string Cli = "ClusterSync.Cli";

    /// <summary>The projects each production project may reference (by project name).</summary>
    public static IReadOnlyDictionary<string, string[]> Allowed { get; } = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        [Abstractions] = [],
        [Core] = [Abstractions],
        [Workload] = [Abstractions, Core],
        [Adaptive] = [Abstractions, Core, Workload],
        [Telemetry] = [Abstractions, Core, Workload],
        [Node] = [Abstractions, Core, Workload, Adaptive, Telemetry],
        [Training] = [Abstractions, Core, Workload, Adaptive],
        [Simulation] = [Abstractions, Core],
        [Cli] = [Abstractions, Core, Workload, Adaptive, Telemetry, Node, Training, Simulation],
    };

    public enum Kind
    {
        Production,
        Plugin,
        Test,
    }

    public static Kind KindOf(string root, string projectPath)
    {
        var relative = Path.GetRelativePath(root, projectPath).Replace('\\', '/');
        return relative.StartsWith("tests/", StringComparison.Ordinal) ? Kind.Test
            : relative.StartsWith("plugins/", StringComparison.Ordinal) || relative.StartsWith("templates/", StringComparison.Ordinal) ? Kind.Plugin
            : Kind.Production;
    }

    /// <summary>Every project file of the repository (bin/ and obj/ left out).</summary>
    public static IReadOnlyList<string> Projects(string root) =>
        [.. Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Split(Path.DirectorySeparatorChar).Any(s => s is "bin" or "obj" or ".git"))
            .Order(StringComparer.Ordinal)];

    /// <summary>The project references of <paramref name="projectPath"/>, its own and those of the Directory.Build.props above it.</summary>
    public static IEnumerable<ProjectEdge> EdgesOf(string root, string projectPath)
    {
        var files = new List<string> { projectPath };
        for (var dir = Path.GetDirectoryName(projectPath); dir is not null && dir.Length >= root.Length; dir = Path.GetDirectoryName(dir))
        {
            var props = Path.Combine(dir, "Directory.Build.props");
            if (File.Exists(props))
            {
                files.Add(props);
            }
        }

        var from = Path.GetFileNameWithoutExtension(projectPath);
        foreach (var file in files)
        {
            var dir = Path.GetDirectoryName(file)! + Path.DirectorySeparatorChar;
            foreach (var reference in XDocument.Load(file).Descendants().Where(e => e.Name.LocalName == "ProjectReference"))
            {
                var include = reference.Attribute("Include")?.Value;
                if (include is null)
                {
                    continue;
                }

                var path = include.Replace("$(MSBuildThisFileDirectory)", dir, StringComparison.Ordinal).Replace('\\', Path.DirectorySeparatorChar);
                var target = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(dir, path));
                var output = reference.Attribute("ReferenceOutputAssembly")?.Value
                    ?? reference.Elements().FirstOrDefault(e => e.Name.LocalName == "ReferenceOutputAssembly")?.Value;
                yield return new ProjectEdge(from, projectPath, Path.GetFileNameWithoutExtension(target), target,
                    string.Equals(output, "false", StringComparison.OrdinalIgnoreCase));
            }
        }
    }

    /// <summary>Why <paramref name="edge"/> is forbidden, or null when it is allowed.</summary>
    public static string? Violation(string root, ProjectEdge edge)
    {
        var fromKind = KindOf(root, edge.FromPath);
        var toKind = KindOf(root, edge.ToPath);
        if (fromKind == Kind.Test)
        {
            return null;
        }

        if (fromKind == Kind.Plugin)
        {
            return edge.To == Abstractions ? null : $"{edge.From} -> {edge.To}: a plugin references ClusterSync.Abstractions only";
        }

        if (toKind == Kind.Test)
        {
            return $"{edge.From} -> {edge.To}: a production project references a test project";
        }

        if (toKind == Kind.Plugin)
        {
            // The host builds its shipped plugins first and never references them (they are loaded from plugins/).
            return edge.BuildOrderOnly && edge.From == Cli ? null
                : $"{edge.From} -> {edge.To}: only clustersync may name a plugin, and only for build order (ReferenceOutputAssembly=false)";
        }

        if (!Allowed.TryGetValue(edge.From, out var allowed))
        {
            return $"{edge.From}: a production project missing from the allowed graph (ProjectGraph.Allowed)";
        }

        return allowed.Contains(edge.To, StringComparer.Ordinal) ? null
            : $"{edge.From} -> {edge.To}: not allowed (allowed: {(allowed.Length == 0 ? "nothing" : string.Join(", ", allowed))})";
    }
}
