using ClusterSync.Adaptive.Controller;

namespace ClusterSync.Node.Configuration;

/// <summary>Validation of the node's <c>adaptive</c> and <c>telemetry</c> sections (called by <see cref="NodeConfigLoader"/>).</summary>
internal static class AdaptiveNodeConfig
{
    /// <summary>The loader for <c>adaptive.model</c> files (ML.NET lifetime models written by <c>clustersync train</c>).</summary>
    public static IModelLoader? ModelLoader { get; set; } = new LifetimeModelLoader();

    public static void Validate(NodeConfig c, string file, List<string> errors)
    {
        var a = c.Adaptive;
        errors.AddRange(a.Validate("adaptive"));
        var classes = c.Policy.Classes.Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
        for (int i = 0; i < (a.NeverSkip?.Count ?? 0); i++)
        {
            if (!string.IsNullOrWhiteSpace(a.NeverSkip![i]) && !classes.Contains(a.NeverSkip[i]))
            {
                errors.Add($"adaptive.neverSkip[{i}]: '{a.NeverSkip[i]}' is not one of policy.classes ({string.Join(", ", classes)})");
            }
        }

        if (a.Enabled && !string.IsNullOrWhiteSpace(a.Model) && !IsColdStart(a.Model))
        {
            var path = ResolvePath(file, a.Model);
            if (!File.Exists(path))
            {
                errors.Add($"adaptive.model: {path}: file not found; expected a model zip written by 'clustersync train' (or no 'model' for cold start)");
            }
            else if (ModelLoader is null)
            {
                errors.Add($"adaptive.model: {path}: this build has no model runtime to load it; remove 'model' to run adaptive mode in cold start");
            }
            else if (!ModelLoader.TryLoad(path, out _, out var reason))
            {
                errors.Add($"adaptive.model: {reason}");
            }
        }

        errors.AddRange(c.Telemetry.Validate("telemetry"));
    }

    /// <summary><c>adaptive.model: "none"</c>: cold start on purpose (no model, not even the shipped one).</summary>
    public const string NoModel = "none";

    public static bool IsColdStart(string? model) => string.Equals(model?.Trim(), NoModel, StringComparison.OrdinalIgnoreCase);

    /// <summary>The shipped model, copied next to the binary by the build: the default of adaptive mode without <c>adaptive.model</c>.</summary>
    public static string ShippedModelPath => System.IO.Path.Combine(AppContext.BaseDirectory, "models", "lifetime.zip");

    public static string ResolvePath(string configFile, string path)
        => System.IO.Path.GetFullPath(path, System.IO.Path.GetDirectoryName(configFile)!);
}
