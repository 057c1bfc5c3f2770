using ClusterSync.Classification;
using ClusterSync.Engine;
using ClusterSync.Node.Configuration;
using ClusterSync.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Plugins;

/// <summary>What <c>/status</c> reports about plugins: the classifier in effect and every plugin found.</summary>
public sealed record PluginsStatus
{
    /// <summary>The classifier in effect (a plugin's name, or <c>port-protocol (built-in)</c> after a fallback).</summary>
    public string Classifier { get; init; } = "";

    /// <summary>The configured classifier plugin.</summary>
    public string ConfiguredClassifier { get; init; } = "";

    public long ClassifierCalls { get; init; }

    public long ClassifierExceptions { get; init; }

    public long ClassifierUnknownClasses { get; init; }

    public long ClassifierTimeouts { get; init; }

    public long Reloads { get; init; }

    public IReadOnlyList<PluginInfo> Plugins { get; init; } = [];
}

/// <summary>
/// A node's plugins: loads the plugin directory, binds the configured classifier plugin into the engine's class catalog
/// (the node classifies through the plugin path by default: <c>port-protocol</c>), rebinds it when a new version is
/// dropped into its folder (hot reload), and records a plugin the isolation disabled. When the configured classifier
/// cannot be used (not found, refused, its factory throws), the engine keeps its built-in rules and the reason is logged
/// and shown in <c>/status</c>.
/// </summary>
public sealed partial class NodePlugins : IDisposable
{
    private readonly PluginsConfig _config;
    private readonly SyncEngine _engine;
    private readonly ClassifierContextFactory _context;
    private readonly ILogger _logger;
    private long _reloads;

    public NodePlugins(PluginsConfig config, string? configPath, SyncEngine engine, ILoggerFactory? loggerFactory = null, PluginCatalog? catalog = null)
    {
        _config = config;
        _engine = engine;
        _logger = loggerFactory?.CreateLogger("ClusterSync.Plugins") ?? NullLogger.Instance;
        _context = new ClassifierContextFactory(engine.Options.Policy, config);
        Catalog = catalog ?? PluginCatalog.Load(config.ResolveDirectory(configPath), config.HotReload, config.Disabled, _logger);
        engine.Catalog.PluginDisabled += OnDisabled;
        Catalog.ClassifierReloaded += OnReloaded;
        if (config.Classifier == PluginsConfig.BuiltInClassifier)
        {
            return;
        }

        if (!Catalog.TryGetClassifier(config.Classifier, out var factory, out var info))
        {
            var found = Catalog.Find(config.Classifier);
            Log.ClassifierUnavailable(_logger, config.Classifier, Catalog.Directory,
                found is null ? "no such plugin" : $"{found.Status}: {found.Reason}");
            return;
        }

        Bind(factory, info.Version ?? "");
    }

    public PluginCatalog Catalog { get; }

    public PluginsStatus GetStatus()
    {
        var b = _engine.Catalog.Plugin;
        return new PluginsStatus
        {
            Classifier = _engine.Catalog.ActivePlugin is not null ? _engine.Catalog.ClassifierName : $"{_engine.Catalog.FallbackClassifierName} (built-in)",
            ConfiguredClassifier = _config.Classifier,
            ClassifierCalls = b?.Calls ?? 0,
            ClassifierExceptions = b?.Exceptions ?? 0,
            ClassifierUnknownClasses = b?.UnknownClasses ?? 0,
            ClassifierTimeouts = b?.Timeouts ?? 0,
            Reloads = Interlocked.Read(ref _reloads),
            Plugins = Catalog.Plugins,
        };
    }

    private bool Bind(IConnectionClassifierFactory factory, string version)
    {
        IConnectionClassifier classifier;
        try
        {
            classifier = factory.Create(_context.Create(factory.Name));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Catalog.MarkDisabled(factory.Name, $"its factory failed: {ex.GetType().Name}: {ex.Message}");
            Log.ClassifierUnavailable(_logger, factory.Name, Catalog.Directory, $"its factory failed: {ex.Message}");
            return false;
        }

        _engine.Catalog.BindPlugin(factory.Name, version, classifier, _config.Guard);
        Log.ClassifierBound(_logger, factory.Name, version);
        return true;
    }

    private void OnReloaded(string name, string version, IConnectionClassifierFactory factory)
    {
        if (name != _config.Classifier)
        {
            return;
        }

        if (Bind(factory, version))
        {
            Interlocked.Increment(ref _reloads);
        }
    }

    private void OnDisabled(PluginClassifierBinding binding, string reason)
    {
        Catalog.MarkDisabled(binding.PluginName, reason);
        Log.ClassifierDisabled(_logger, binding.PluginName, reason, _engine.Catalog.FallbackClassifierName);
    }

    public void Dispose()
    {
        _engine.Catalog.PluginDisabled -= OnDisabled;
        Catalog.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(3010, LogLevel.Information, "Classifier plugin {Name} {Version} in use")]
        public static partial void ClassifierBound(ILogger logger, string name, string version);

        [LoggerMessage(3011, LogLevel.Warning, "Classifier plugin {Name} not usable from {Directory} ({Reason}): using the built-in port/protocol rules")]
        public static partial void ClassifierUnavailable(ILogger logger, string name, string directory, string reason);

        [LoggerMessage(3012, LogLevel.Error, "Classifier plugin {Name} disabled: {Reason}; falling back to the built-in '{Fallback}' rules")]
        public static partial void ClassifierDisabled(ILogger logger, string name, string reason, string fallback);
    }
}

/// <summary>Builds the <see cref="ClassifierContext"/> a classifier factory receives from the node's policy and plugin settings.</summary>
internal sealed class ClassifierContextFactory(PolicyOptions policy, PluginsConfig plugins)
{
    public ClassifierContext Create(string pluginName) => new(
        [.. policy.Classes.Select(c => c.Name)],
        policy.DefaultClass,
        [.. policy.Rules.Select(r => new ClassRule(r.Protocol, r.Ports, r.Class))],
        plugins.Settings.TryGetValue(pluginName, out var s) ? s : null);
}
