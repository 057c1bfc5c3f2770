using ClusterSync.Classification;
using ClusterSync.Engine;
using ClusterSync.Policy;
using ClusterSync.Node.Configuration;
using ClusterSync.Node.Plugins;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The classifier plugin bound into the engine, swapped whole when a hot reload binds a new version: its name and
/// version (null: the built-in rules) and how many reloads were bound so far.
/// </summary>
public sealed record ClassifierState(string? Plugin, string? Version, long Reloads)
{
    public static readonly ClassifierState BuiltIn = new(null, null, 0);
}

/// <summary>
/// A node's classifier plugin at run time: binds the classifier that validation created (<see cref="ResolvedPlugins"/>)
/// into the engine's class catalog, rebinds it when a new version is dropped into its folder (hot reload; a version
/// whose factory refuses its settings is not bound, the one in use stays), and records a plugin the isolation disabled.
/// The binding in use is one <see cref="ClassifierState"/>, replaced whole.
/// </summary>
public sealed partial class NodePlugins : IDisposable
{
    private readonly PluginsConfig _config;
    private readonly SyncEngine _engine;
    private readonly ILogger _logger;
    private ClassifierState _state = ClassifierState.BuiltIn;

    /// <summary>Binds the resolved classifier (the node's composition root calls this; the catalog stays the model's).</summary>
    internal NodePlugins(ResolvedPlugins plugins, PluginsConfig config, SyncEngine engine, ILoggerFactory? loggerFactory)
    {
        _config = config;
        _engine = engine;
        _logger = loggerFactory?.CreateLogger("ClusterSync.Plugins") ?? NullLogger.Instance;
        Catalog = plugins.Catalog;
        Catalog.UseLogger(_logger);
        engine.Catalog.PluginDisabled += OnDisabled;
        Catalog.ClassifierReloaded += OnReloaded;
        if (plugins.Classifier is { } c)
        {
            Bind(c.Name, c.Version, c.Classifier, reload: false);
        }
        else if (plugins.ClassifierUnavailable is { } why)
        {
            Log.ClassifierUnavailable(_logger, config.Classifier, Catalog.Directory, why);
        }
    }

    /// <summary>
    /// Loads the plugin directory of <paramref name="config"/> and binds its classifier into <paramref name="engine"/>
    /// (an engine outside a node, as the plugin tests run one); resolved as a node's validation resolves it, so a
    /// classifier that is missing or refuses its settings throws <see cref="ConfigurationException"/>. Owns the catalog.
    /// </summary>
    public NodePlugins(PluginsConfig config, string? configPath, SyncEngine engine, ILoggerFactory? loggerFactory = null)
        : this(PluginResolver.ResolveClassifierOnly(config, configPath, engine.Options.Policy), config, engine, loggerFactory)
    {
        _ownsCatalog = true;
    }

    private readonly bool _ownsCatalog;

    public PluginCatalog Catalog { get; }

    /// <summary>The classifier binding in use (a snapshot).</summary>
    public ClassifierState State => Volatile.Read(ref _state);

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
            Reloads = State.Reloads,
            Plugins = Catalog.Plugins,
        };
    }

    private void Bind(string name, string version, IConnectionClassifier classifier, bool reload)
    {
        _engine.Catalog.BindPlugin(name, version, classifier, _config.Guard);
        var before = Volatile.Read(ref _state);
        Volatile.Write(ref _state, new ClassifierState(name, version, before.Reloads + (reload ? 1 : 0)));
        Log.ClassifierBound(_logger, name, version);
    }

    private void OnReloaded(string name, string version, IConnectionClassifierFactory factory)
    {
        // On the catalog's file-watcher thread, one reload at a time.
        if (name != _config.Classifier)
        {
            return;
        }

        if (PluginResolver.CreateClassifier(factory, _engine.Options.Policy, _config, out var refused) is not { } classifier)
        {
            Catalog.MarkDisabled(name, $"its factory failed: {refused}");
            Log.ClassifierUnavailable(_logger, name, Catalog.Directory, $"its factory failed: {refused}");
            return;
        }

        Bind(name, version, classifier, reload: true);
    }

    private void OnDisabled(PluginClassifierBinding binding, string reason)
    {
        Catalog.MarkDisabled(binding.PluginName, reason);
        Log.ClassifierDisabled(_logger, binding.PluginName, reason, _engine.Catalog.FallbackClassifierName);
    }

    public void Dispose()
    {
        _engine.Catalog.PluginDisabled -= OnDisabled;
        Catalog.ClassifierReloaded -= OnReloaded;
        if (_ownsCatalog)
        {
            Catalog.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4030, LogLevel.Information, "Classifier plugin {Name} {Version} in use")]
        public static partial void ClassifierBound(ILogger logger, string name, string version);

        [LoggerMessage(4031, LogLevel.Warning, "Classifier plugin {Name} not usable from {Directory} ({Reason}): using the built-in port/protocol rules")]
        public static partial void ClassifierUnavailable(ILogger logger, string name, string directory, string reason);

        [LoggerMessage(4032, LogLevel.Error, "Classifier plugin {Name} disabled: {Reason}; falling back to the built-in '{Fallback}' rules")]
        public static partial void ClassifierDisabled(ILogger logger, string name, string reason, string fallback);
    }
}
