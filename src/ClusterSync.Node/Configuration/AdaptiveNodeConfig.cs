using ClusterSync.Adaptive.Controller;

namespace ClusterSync.Node.Configuration;

/// <summary>The node's adaptive model files: the loader, cold start on purpose, the shipped model, paths (validated by <see cref="AdaptiveValidator"/>).</summary>
internal static class AdaptiveNodeConfig
{
    /// <summary>The loader for <c>adaptive.model</c> files (ML.NET lifetime models written by <c>clustersync train</c>).</summary>
    public static IModelLoader? ModelLoader { get; set; } = new LifetimeModelLoader();

    /// <summary><c>adaptive.model: "none"</c>: cold start on purpose (no model, not even the shipped one).</summary>
    public const string NoModel = "none";

    public static bool IsColdStart(string? model) => string.Equals(model?.Trim(), NoModel, StringComparison.OrdinalIgnoreCase);

    /// <summary>The shipped model, copied next to the binary by the build: the default of adaptive mode without <c>adaptive.model</c>.</summary>
    public static string ShippedModelPath => System.IO.Path.Combine(AppContext.BaseDirectory, "models", "lifetime.zip");

    public static string ResolvePath(string configFile, string path)
        => System.IO.Path.GetFullPath(path, System.IO.Path.GetDirectoryName(configFile)!);
}
