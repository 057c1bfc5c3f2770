namespace ClusterSync.Architecture.Tests;

/// <summary>
/// One place builds configuration exceptions: <c>ConfigurationErrors</c> (Core). Read from the production sources
/// (comments left out): no other file constructs a <c>ConfigurationException</c>.
/// </summary>
public sealed partial class ConfigurationExceptionTests
{
    [Fact]
    public void ConfigurationExceptions_ProductionSources_BuiltOnlyByConfigurationErrors()
    {
        var sources = new[] { "src", "training", "plugins" }
            .Select(d => Path.Combine(Repository.Root, d))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(sources, f => Path.GetFileName(f) == "ConfigurationErrors.cs"); // the scan sees the sources at all

        var offenders = sources
            .Where(f => Path.GetFileName(f) != "ConfigurationErrors.cs")
            .Where(f => Construction().IsMatch(LineComment().Replace(File.ReadAllText(f), "")))
            .Select(f => Path.GetRelativePath(Repository.Root, f))
            .ToList();

        Assert.True(offenders.Count == 0, "build configuration exceptions with ConfigurationErrors (At, AtLine, InFile, All, or the collector), not in:\n"
            + string.Join("\n", offenders));
    }

    [GeneratedRegex(@"new\s+(ClusterSync\.)?ConfigurationException\s*\(")]
    private static partial Regex Construction();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineComment();
}
