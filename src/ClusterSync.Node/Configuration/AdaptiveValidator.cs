using ClusterSync.Adaptive.Controller;

namespace ClusterSync.Node.Configuration;

/// <summary>A configured lifetime model, loaded once by validation (<c>adaptive.model</c>) and handed to the controller.</summary>
public sealed record ConfiguredModel(string Path, ILifetimePredictor Predictor);

/// <summary>
/// The <c>adaptive</c> section: the controller's options, <c>neverSkip</c> names among <c>policy.classes</c>, and the
/// configured model, loaded here (the only time it is loaded before the node runs). Collects every error.
/// </summary>
internal static class AdaptiveValidator
{
    /// <returns>The configured model, loaded; null when adaptive mode is off, runs in cold start or uses the shipped model (or on error).</returns>
    public static ConfiguredModel? Validate(NodeConfig c, string file, ConfigurationErrors errors)
    {
        var a = c.Adaptive;
        errors.AddRange(a.Validate("adaptive"));
        var classes = c.Policy.Classes.Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
        for (int i = 0; i < (a.NeverSkip?.Count ?? 0); i++)
        {
            if (!string.IsNullOrWhiteSpace(a.NeverSkip![i]) && !classes.Contains(a.NeverSkip[i]))
            {
                errors.Add($"adaptive.neverSkip[{i}]", $"'{a.NeverSkip[i]}' is not one of policy.classes ({string.Join(", ", classes)})");
            }
        }

        if (!a.Enabled || string.IsNullOrWhiteSpace(a.Model) || AdaptiveNodeConfig.IsColdStart(a.Model))
        {
            return null;
        }

        var path = AdaptiveNodeConfig.ResolvePath(file, a.Model);
        if (!File.Exists(path))
        {
            errors.Add("adaptive.model", $"{path}: file not found; expected a model zip written by 'clustersync train' (or no 'model' for cold start)");
        }
        else if (AdaptiveNodeConfig.ModelLoader is not { } loader)
        {
            errors.Add("adaptive.model", $"{path}: this build has no model runtime to load it; remove 'model' to run adaptive mode in cold start");
        }
        else if (!loader.TryLoad(path, out var predictor, out var reason) || predictor is null)
        {
            errors.Add("adaptive.model", reason);
        }
        else
        {
            return new ConfiguredModel(path, predictor);
        }

        return null;
    }
}

/// <summary>The <c>telemetry</c> section (capture file, sampling, segments). Collects every error.</summary>
internal static class TelemetryValidator
{
    public static void Validate(NodeConfig c, ConfigurationErrors errors) => errors.AddRange(c.Telemetry.Validate("telemetry"));
}
