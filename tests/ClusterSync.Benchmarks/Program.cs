using BenchmarkDotNet.Running;
using ClusterSync.Benchmarks;

if (args.Length > 0 && args[0] == "table-memory")
{
    Console.WriteLine(TableMemory.Run());
    return 0;
}

// Results go to tests/ClusterSync.Benchmarks/BenchmarkDotNet.Artifacts (git-ignored) whatever the working
// directory; --artifacts on the command line still overrides it.
var config = DefaultConfig.Instance.WithArtifactsPath(Path.Combine(ProjectPaths.Directory(), "BenchmarkDotNet.Artifacts"));
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
return 0;

namespace ClusterSync.Benchmarks
{
    internal static class ProjectPaths
    {
        /// <summary>The directory of this source file when it still exists (a local build), else the working directory.</summary>
        public static string Directory([CallerFilePath] string sourceFile = "")
        {
            string? dir = Path.GetDirectoryName(sourceFile);
            return dir is not null && System.IO.Directory.Exists(dir) ? dir : Environment.CurrentDirectory;
        }
    }
}
