namespace ClusterSync.Architecture.Tests;

/// <summary>
/// The folders of src/ClusterSync.Node depend on each other without a cycle. Read from the sources: a file depends
/// on another folder when it names one of that folder's top-level types (comments left out); the root folder
/// (NodeHost, ClusterNode) composes everything and is left out.
/// </summary>
public sealed partial class NodeFolderTests
{
    [Fact]
    public void Folders_NodeSources_NoCycleBetweenFolders()
    {
        var edges = FolderEdges(Path.Combine(Repository.Root, "src", "ClusterSync.Node"));

        Assert.Contains(("Runtime", "Configuration"), edges); // the reader sees dependencies at all
        var cycle = FindCycle(edges);
        Assert.True(cycle is null, "a cycle between folders of ClusterSync.Node: " + string.Join(" -> ", cycle ?? []) + "\nedges:\n"
            + string.Join("\n", edges.Select(e => $"{e.From} -> {e.To}")));
    }

    internal static HashSet<(string From, string To)> FolderEdges(string projectDirectory)
    {
        var files = Directory.EnumerateFiles(projectDirectory, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => (Folder: FolderOf(projectDirectory, f), Text: StripComments(File.ReadAllText(f))))
            .Where(f => f.Folder.Length > 0)
            .ToList();
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (folder, text) in files)
        {
            foreach (Match m in TopLevelType().Matches(text).Concat(Delegate().Matches(text)))
            {
                owner[m.Groups["name"].Value] = folder;
            }
        }

        var edges = new HashSet<(string, string)>();
        foreach (var (folder, text) in files)
        {
            foreach (Match m in Identifier().Matches(text))
            {
                if (owner.TryGetValue(m.Value, out var other) && other != folder)
                {
                    edges.Add((folder, other));
                }
            }
        }

        return edges;
    }

    private static string FolderOf(string projectDirectory, string file)
    {
        var relative = Path.GetRelativePath(projectDirectory, Path.GetDirectoryName(file)!);
        return relative == "." ? "" : relative.Split(Path.DirectorySeparatorChar)[0];
    }

    private static string StripComments(string text) => LineComment().Replace(BlockComment().Replace(text, ""), "");

    private static List<string>? FindCycle(HashSet<(string From, string To)> edges)
    {
        var next = edges.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToList(), StringComparer.Ordinal);
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 on the path, 2 done
        var path = new List<string>();

        List<string>? Visit(string n)
        {
            state[n] = 1;
            path.Add(n);
            foreach (var m in next.GetValueOrDefault(n) ?? [])
            {
                if (state.GetValueOrDefault(m) == 1)
                {
                    return [.. path.Skip(path.IndexOf(m)), m];
                }

                if (state.GetValueOrDefault(m) == 0 && Visit(m) is { } found)
                {
                    return found;
                }
            }

            path.RemoveAt(path.Count - 1);
            state[n] = 2;
            return null;
        }

        foreach (var n in next.Keys.Order(StringComparer.Ordinal))
        {
            if (state.GetValueOrDefault(n) == 0 && Visit(n) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    [GeneratedRegex(@"^(?:internal|public)\s+(?:(?:static|sealed|readonly|abstract|partial)\s+)*(?:class|record\s+struct|record|struct|enum|interface)\s+(?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    [GeneratedRegex(@"(?:internal|public)\s+delegate\s+\S+\s+(?<name>\w+)")]
    private static partial Regex Delegate();

    [GeneratedRegex(@"\b[A-Z]\w*\b")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex BlockComment();
}
