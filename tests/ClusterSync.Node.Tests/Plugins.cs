using System.Reflection;

namespace ClusterSync.Node.Tests;

/// <summary>
/// A plugin directory of its own (deleted on dispose) holding plugins built in the repository, each deployed as a node
/// finds it: <c>DIR/NAME/NAME.dll</c> with every file of the plugin's build output.
/// </summary>
internal sealed class Plugins : IDisposable
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("clustersync-plugins-").FullName;

    /// <summary>The repository's plugin project <paramref name="project"/> (for example <c>plugins/Protocol.Ftp</c>), deployed here.</summary>
    public Plugins With(string project)
    {
        var output = Path.Combine(Built("RepoRoot"), project, "bin", Built("Configuration"), "net10.0");
        var deps = System.IO.Directory.GetFiles(output, "*.deps.json");
        var name = Path.GetFileName(Assert.Single(deps))[..^".deps.json".Length];
        var target = System.IO.Directory.CreateDirectory(Path.Combine(Directory, name)).FullName;
        foreach (var file in System.IO.Directory.GetFiles(output))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }

        return this;
    }

    /// <summary>What the build recorded in this assembly's metadata: the repository it was built from, the configuration.</summary>
    private static string Built(string key) => typeof(Plugins).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A loaded plugin's file may still be mapped; the temporary directory is left behind.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
