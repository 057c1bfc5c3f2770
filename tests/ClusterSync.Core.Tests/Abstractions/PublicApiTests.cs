using System.Reflection;
using ClusterSync.Plugins;

namespace ClusterSync.Core.Tests.Abstractions;

/// <summary>
/// The public surface of ClusterSync.Abstractions (what plugins compile against) is tracked in
/// src/ClusterSync.Abstractions/PublicAPI.txt. A change shows up here: update the file, and raise
/// <see cref="PluginContract.Version"/> when the change breaks plugins built before it.
/// </summary>
public class PublicApiTests
{
    [Fact]
    public void PublicSurface_MatchesTrackedFile()
    {
        var actual = Describe(typeof(PluginContract).Assembly);
        var path = Path.Combine(RepoRoot(), "src", "ClusterSync.Abstractions", "PublicAPI.txt");
        var expected = File.Exists(path) ? File.ReadAllText(path).ReplaceLineEndings("\n") : "";
        if (expected != actual)
        {
            File.WriteAllText(path + ".received", actual);
        }

        Assert.True(expected == actual,
            $"The public API of ClusterSync.Abstractions changed: compare {path} with {path}.received, then copy it over (and raise PluginContract.Version if plugins built before would break).");
    }

    [Fact]
    public void PluginContract_Version_IsDeclaredInTrackedFile()
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot(), "src", "ClusterSync.Abstractions", "PublicAPI.txt"));

        Assert.Contains($"contract version {PluginContract.Version}", text, StringComparison.Ordinal);
    }

    private static string Describe(Assembly assembly)
    {
        var sb = new StringBuilder();
        sb.Append("# ClusterSync.Abstractions public API, plugin contract version ").Append(PluginContract.Version).Append('\n');
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            var kind = type.IsEnum ? "enum" : type.IsInterface ? "interface" : type.IsValueType ? "struct" : type.IsAbstract && type.IsSealed ? "static class" : "class";
            sb.Append(kind).Append(' ').Append(type.FullName).Append('\n');
            var members = type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => m is not MethodInfo { IsSpecialName: true })
                .Select(m => m switch
                {
                    FieldInfo { IsLiteral: true } f when !type.IsEnum => $"const {f}",
                    _ => $"{m.MemberType.ToString().ToLowerInvariant()} {m}",
                })
                .Order(StringComparer.Ordinal);
            foreach (var m in members)
            {
                sb.Append("  ").Append(m).Append('\n');
            }
        }

        return sb.ToString();
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("ClusterSync.sln not found");
    }
}
