using System.Text.Json;
using System.Text.Json.Serialization;
using ClusterSync.Policy;

namespace ClusterSync.Node.Configuration;

/// <summary>The node's <c>plugins</c> section: where plugins are found, which classifier is used, how it is isolated.</summary>
public sealed record PluginsConfig
{
    public const string DefaultClassifier = "port-protocol";
    public const string BuiltInClassifier = "built-in";

    /// <summary><c>plugins/</c> next to the clustersync binary (of the embedding application's binary when embedded).</summary>
    public static string DefaultDirectory => Node.Plugins.PluginCatalog.DefaultDirectory;

    /// <summary>The plugin directory (one folder per plugin); relative to the configuration file. Default: <c>plugins/</c> next to the clustersync binary.</summary>
    public string? Directory { get; init; }

    /// <summary>
    /// The classifier plugin by name; <c>built-in</c> uses the in-process port/protocol rules without a plugin. A plugin
    /// named here must load (validation fails otherwise); not set: <c>port-protocol</c> when it is deployed, else the
    /// built-in rules (<see cref="ClassifierNamed"/> tells the two apart).
    /// </summary>
    public string Classifier
    {
        get => _classifier;
        init
        {
            _classifier = value;
            ClassifierNamed = true;
        }
    }

    private readonly string _classifier = DefaultClassifier;

    /// <summary>True when <see cref="Classifier"/> was set (in the file or by code), false for the default.</summary>
    [JsonIgnore]
    public bool ClassifierNamed { get; private init; }

    /// <summary>A classifier call running longer than this disables the plugin (a hang).</summary>
    public TimeSpan ClassifierTimeout { get; init; } = new ClassifierGuardOptions().CallTimeout;

    /// <summary>Classifier failures (exceptions, unknown classes) before the plugin is disabled.</summary>
    public int MaxFailures { get; init; } = new ClassifierGuardOptions().MaxFailures;

    /// <summary>Reload a classifier plugin when a new version is dropped into its folder.</summary>
    public bool HotReload { get; init; } = true;

    /// <summary>Plugin names not to load (listed as disabled).</summary>
    public IReadOnlyList<string> Disabled { get; init; } = [];

    /// <summary>Each plugin's own settings, by plugin name (handed to its factory).</summary>
    public IReadOnlyDictionary<string, JsonElement> Settings { get; init; } = new Dictionary<string, JsonElement>();

    public ClassifierGuardOptions Guard => new() { CallTimeout = ClassifierTimeout, MaxFailures = MaxFailures };

    public IEnumerable<string> Validate(string path)
    {
        if (string.IsNullOrWhiteSpace(Classifier))
        {
            yield return $"{path}.classifier: expected a classifier plugin name or '{BuiltInClassifier}'";
        }

        foreach (var e in Guard.Validate(path))
        {
            yield return e;
        }
    }

    public string ResolveDirectory(string? configPath)
        => Directory is null ? DefaultDirectory
            : Path.GetFullPath(Directory, configPath is null ? Environment.CurrentDirectory : Path.GetDirectoryName(Path.GetFullPath(configPath))!);
}
