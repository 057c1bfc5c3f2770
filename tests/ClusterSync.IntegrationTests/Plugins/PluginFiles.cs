namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>Where the built plugins are, and a temporary plugin directory to drop them into (deleted on dispose).</summary>
internal sealed class PluginFiles : IDisposable
{
#if DEBUG
    public const string ConfigurationName = "Debug";
#else
    public const string ConfigurationName = "Release";
#endif

    public PluginFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "clustersync-plugins-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    /// <summary>The temporary plugin directory.</summary>
    public string Directory { get; }

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("ClusterSync.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The build output of a test plugin project under tests/Plugins.</summary>
    public static string TestPluginOutput(string project) => Path.Combine(RepoRoot, "tests", "Plugins", project, "bin", ConfigurationName, "net10.0");

    /// <summary>The shipped plugins, published next to the clustersync binary by the build.</summary>
    public static string ShippedPluginDirectory => Path.Combine(RepoRoot, "src", "ClusterSync.Cli", "bin", ConfigurationName, "net10.0", "plugins");

    /// <summary>Copies a built plugin (every file of its output) into <c>Directory/folder/</c>, as a deployment would.</summary>
    public string Drop(string sourceDirectory, string folder)
    {
        var target = Path.Combine(Directory, folder);
        System.IO.Directory.CreateDirectory(target);
        foreach (var file in System.IO.Directory.GetFiles(sourceDirectory))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
        }

        return target;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
