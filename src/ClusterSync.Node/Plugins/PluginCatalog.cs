using System.Collections.Concurrent;
using System.Reflection;
using ClusterSync.Classification;
using ClusterSync.DataPlane;
using ClusterSync.Plugins;
using ClusterSync.Transport;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterSync.Node.Plugins;

/// <summary>One plugin found on disk, as <c>clustersync plugins</c> and <c>/status</c> report it.</summary>
public sealed record PluginInfo
{
    public required string Name { get; init; }

    /// <summary><c>classifier</c>, <c>transport</c>, <c>dataplane</c>, <c>protocol</c>, or <c>unknown</c> (no manifest).</summary>
    public required string Kind { get; init; }

    public string? Version { get; init; }

    /// <summary><c>loaded</c>, <c>refused</c> or <c>disabled</c>.</summary>
    public required string Status { get; init; }

    public string? Reason { get; init; }

    public int? ContractVersion { get; init; }

    public required string Path { get; init; }

    public const string Loaded = "loaded";
    public const string Refused = "refused";
    public const string Disabled = "disabled";

    public static string KindName(PluginKind kind) => kind switch
    {
        PluginKind.Classifier => "classifier",
        PluginKind.Transport => "transport",
        PluginKind.DataPlane => "dataplane",
        PluginKind.Protocol => "protocol",
        _ => "unknown",
    };
}

/// <summary>
/// The plugins of one directory: each subfolder <c>NAME/</c> holding <c>NAME.dll</c> (a published plugin) is loaded into
/// its own load context with McMaster.NETCore.Plugins, ClusterSync.Abstractions shared with the host. A plugin is
/// refused, with the reason, when it has no <see cref="ClusterSyncPluginAttribute"/> manifest, was built for another
/// <see cref="PluginContract.Version"/>, exports no factory of its kind, or its factory cannot be created; a name taken
/// twice is refused the second time. Lookups by kind and name: <see cref="TryGetClassifier"/>, <see cref="TryGetTransport"/>,
/// <see cref="TryGetDataPlane"/>. With hot reload, a classifier or protocol plugin whose assembly changes on disk is loaded
/// again and <see cref="ClassifierReloaded"/> is raised with the new factory.
/// </summary>
public sealed partial class PluginCatalog : IDisposable
{
    private static readonly Type[] s_sharedTypes =
    [
        typeof(ClusterSyncPluginAttribute), typeof(IConnectionClassifierFactory), typeof(IRelatedConnectionResolver),
        typeof(ISyncTransportFactory), typeof(IStreamTransportFactory), typeof(IDataPlaneFactory), typeof(Connections.ConnectionKey),
    ];

    private readonly ConcurrentDictionary<string, PluginInfo> _infos = new(StringComparer.Ordinal);   // by folder path
    private readonly Dictionary<string, IConnectionClassifierFactory> _classifiers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ISyncTransportFactory> _transports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IDataPlaneFactory> _dataPlanes = new(StringComparer.Ordinal);
    private readonly List<PluginLoader> _loaders = [];
    private ILogger _logger;
    private readonly object _sync = new();

    private PluginCatalog(string directory, ILogger? logger)
    {
        Directory = directory;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary><c>plugins/</c> next to the clustersync binary.</summary>
    public static string DefaultDirectory => System.IO.Path.Combine(AppContext.BaseDirectory, "plugins");

    public string Directory { get; }

    /// <summary>Raised (on a file-watcher thread) when a classifier plugin was reloaded from disk: its name, version and new factory.</summary>
    public event Action<string, string, IConnectionClassifierFactory>? ClassifierReloaded;

    /// <summary>Every plugin found, ordered by name.</summary>
    public IReadOnlyList<PluginInfo> Plugins => [.. _infos.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Path, StringComparer.Ordinal)];

    /// <summary>Scans <paramref name="directory"/> (a missing directory holds no plugins) and loads what it finds.</summary>
    public static PluginCatalog Load(string directory, bool hotReload = false, IReadOnlyCollection<string>? disabled = null, ILogger? logger = null)
    {
        var catalog = new PluginCatalog(System.IO.Path.GetFullPath(directory), logger);
        if (!System.IO.Directory.Exists(catalog.Directory))
        {
            return catalog;
        }

        foreach (var folder in System.IO.Directory.GetDirectories(catalog.Directory).Order(StringComparer.Ordinal))
        {
            catalog.LoadFolder(folder, hotReload, disabled ?? []);
        }

        return catalog;
    }

    public bool TryGetClassifier(string name, out IConnectionClassifierFactory factory, out PluginInfo info)
        => TryGet(_classifiers, name, out factory, out info);

    /// <summary>A transport plugin by its configuration name (for example <c>nats</c>).</summary>
    public bool TryGetTransport(string name, out ISyncTransportFactory factory, out PluginInfo info)
        => TryGet(_transports, name, out factory, out info);

    public bool TryGetDataPlane(string name, out IDataPlaneFactory factory, out PluginInfo info)
        => TryGet(_dataPlanes, name, out factory, out info);

    /// <summary>The entry for a plugin by name and kind, if found.</summary>
    public PluginInfo? Find(string name) => _infos.Values.FirstOrDefault(p => p.Name == name && p.Status != PluginInfo.Refused)
        ?? _infos.Values.FirstOrDefault(p => p.Name == name);

    /// <summary>Marks a loaded plugin disabled at run time (isolation), with the reason.</summary>
    public void MarkDisabled(string name, string reason)
    {
        foreach (var (path, info) in _infos)
        {
            if (info.Name == name && info.Status == PluginInfo.Loaded)
            {
                _infos[path] = info with { Status = PluginInfo.Disabled, Reason = reason };
            }
        }
    }

    private bool TryGet<T>(Dictionary<string, T> map, string name, out T factory, out PluginInfo info)
        where T : class
    {
        lock (_sync)
        {
            if (map.TryGetValue(name, out var f))
            {
                factory = f;
                info = _infos.Values.First(p => p.Name == name && p.Status == PluginInfo.Loaded);
                return true;
            }
        }

        factory = null!;
        info = null!;
        return false;
    }

    private void LoadFolder(string folder, bool hotReload, IReadOnlyCollection<string> disabled)
    {
        var folderName = System.IO.Path.GetFileName(folder);
        var dll = System.IO.Path.Combine(folder, folderName + ".dll");
        if (!File.Exists(dll))
        {
            Record(folder, new PluginInfo
            {
                Name = folderName, Kind = "unknown", Status = PluginInfo.Refused, Path = dll,
                Reason = $"no {folderName}.dll in {folder} (a plugin folder holds the published plugin, its main assembly named like the folder)",
            });
            return;
        }

        PluginLoader loader;
        try
        {
            loader = CreateLoader(dll, hotReload);
        }
        catch (IOException ex) when (hotReload)
        {
            // The file watcher could not start (for example the inotify instance limit): load without hot reload.
            Log.HotReloadUnavailable(_logger, folderName, ex.Message);
            hotReload = false;
            try
            {
                loader = CreateLoader(dll, hotReload: false);
            }
            catch (Exception again) when (again is IOException or BadImageFormatException or UnauthorizedAccessException or ArgumentException)
            {
                Record(folder, Refuse(folderName, dll, $"cannot load {dll}: {again.Message}"));
                return;
            }
        }
        catch (Exception ex) when (ex is IOException or BadImageFormatException or UnauthorizedAccessException or ArgumentException)
        {
            Record(folder, Refuse(folderName, dll, $"cannot load {dll}: {ex.Message}"));
            return;
        }

        lock (_sync)
        {
            _loaders.Add(loader);
        }

        var info = Inspect(loader, folderName, dll, disabled, out var factory);
        Record(folder, info);
        if (hotReload && factory is IConnectionClassifierFactory)
        {
            loader.Reloaded += (_, e) => OnReloaded(folder, folderName, dll, e.Loader, disabled);
        }
    }

    private static PluginLoader CreateLoader(string dll, bool hotReload)
        => PluginLoader.CreateFromAssemblyFile(dll, s_sharedTypes, config =>
        {
            config.IsUnloadable = hotReload;
            config.LoadInMemory = hotReload;
            config.EnableHotReload = hotReload;
            config.ReloadDelay = TimeSpan.FromMilliseconds(200);
        });

    private void OnReloaded(string folder, string folderName, string dll, PluginLoader loader, IReadOnlyCollection<string> disabled)
    {
        string? oldName = _infos.TryGetValue(folder, out var old) ? old.Name : null;
        lock (_sync)
        {
            if (oldName is not null)
            {
                _classifiers.Remove(oldName);
            }
        }

        var info = Inspect(loader, folderName, dll, disabled, out var factory);
        Record(folder, info);
        Log.PluginReloaded(_logger, info.Name, info.Version ?? "?", info.Status, info.Reason ?? "");
        if (factory is IConnectionClassifierFactory classifier && info.Status == PluginInfo.Loaded)
        {
            ClassifierReloaded?.Invoke(info.Name, info.Version ?? "", classifier);
        }
    }

    private PluginInfo Inspect(PluginLoader loader, string folderName, string dll, IReadOnlyCollection<string> disabled, out object? factory)
    {
        factory = null;
        Assembly assembly;
        ClusterSyncPluginAttribute? manifest;
        try
        {
            assembly = loader.LoadDefaultAssembly();
            manifest = assembly.GetCustomAttribute<ClusterSyncPluginAttribute>();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return Refuse(folderName, dll, $"cannot load {System.IO.Path.GetFileName(dll)}: {ex.GetType().Name}: {ex.Message}");
        }

        if (manifest is null)
        {
            return Refuse(folderName, dll, "no plugin manifest: the assembly has no [assembly: ClusterSyncPlugin(name, version, kind)] attribute");
        }

        var baseInfo = new PluginInfo
        {
            Name = manifest.Name, Kind = PluginInfo.KindName(manifest.Kind), Version = manifest.Version,
            ContractVersion = manifest.ContractVersion, Status = PluginInfo.Refused, Path = dll,
        };
        if (manifest.ContractVersion != PluginContract.Version)
        {
            return baseInfo with
            {
                Reason = $"built for plugin contract version {manifest.ContractVersion}, this host implements version {PluginContract.Version}: rebuild the plugin against this ClusterSync.Abstractions",
            };
        }

        if (string.IsNullOrWhiteSpace(manifest.Name))
        {
            return baseInfo with { Name = folderName, Reason = "the manifest names no plugin" };
        }

        if (disabled.Contains(manifest.Name))
        {
            return baseInfo with { Status = PluginInfo.Disabled, Reason = "disabled by configuration (plugins.disabled)" };
        }

        var contract = manifest.Kind switch
        {
            PluginKind.Classifier or PluginKind.Protocol => typeof(IConnectionClassifierFactory),
            PluginKind.Transport => typeof(ISyncTransportFactory),
            PluginKind.DataPlane => typeof(IDataPlaneFactory),
            _ => null,
        };
        if (contract is null)
        {
            return baseInfo with { Kind = "unknown", Reason = $"unknown plugin kind {(int)manifest.Kind}" };
        }

        Type[] types;
        try
        {
            types = assembly.GetExportedTypes();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return baseInfo with { Reason = $"cannot read its types ({ex.GetType().Name}: {ex.Message}); was it built against another ClusterSync.Abstractions?" };
        }

        var candidates = types.Where(t => t is { IsClass: true, IsAbstract: false } && contract.IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null).ToList();
        if (candidates.Count != 1)
        {
            return baseInfo with
            {
                Reason = candidates.Count == 0
                    ? $"declares kind {baseInfo.Kind} but exports no public {contract.Name} with a public parameterless constructor"
                    : $"exports {candidates.Count} {contract.Name} types; a plugin exports one",
            };
        }

        object instance;
        string name;
        try
        {
            instance = Activator.CreateInstance(candidates[0])!;
            name = instance switch
            {
                IConnectionClassifierFactory c => c.Name,
                ISyncTransportFactory t => t.Name,
                IDataPlaneFactory d => d.Name,
                _ => "",
            };
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var inner = ex is TargetInvocationException { InnerException: { } i } ? i : ex;
            return baseInfo with { Reason = $"{candidates[0].Name} could not be created: {inner.GetType().Name}: {inner.Message}" };
        }

        if (name != manifest.Name)
        {
            return baseInfo with { Reason = $"its {contract.Name} is named '{name}' but its manifest says '{manifest.Name}'" };
        }

        lock (_sync)
        {
            bool added = instance switch
            {
                IConnectionClassifierFactory c => _classifiers.TryAdd(name, c),
                ISyncTransportFactory t => _transports.TryAdd(name, t),
                IDataPlaneFactory d => _dataPlanes.TryAdd(name, d),
                _ => false,
            };
            if (!added)
            {
                return baseInfo with { Reason = $"another {baseInfo.Kind} plugin named '{name}' is loaded already" };
            }
        }

        factory = instance;
        return baseInfo with { Status = PluginInfo.Loaded };
    }

    private static PluginInfo Refuse(string name, string dll, string reason)
        => new() { Name = name, Kind = "unknown", Status = PluginInfo.Refused, Path = dll, Reason = reason };

    /// <summary>
    /// Logs through <paramref name="logger"/> from now on, starting with what the load found (a node loads its catalog
    /// while validating its configuration, before the host's logging exists).
    /// </summary>
    public void UseLogger(ILogger logger)
    {
        Volatile.Write(ref _logger, logger);
        foreach (var info in Plugins)
        {
            LogFound(info);
        }
    }

    private void Record(string folder, PluginInfo info)
    {
        _infos[folder] = info;
        LogFound(info);
    }

    private void LogFound(PluginInfo info)
    {
        if (info.Status == PluginInfo.Refused)
        {
            Log.PluginRefused(_logger, info.Name, info.Path, info.Reason ?? "");
        }
        else
        {
            Log.PluginFound(_logger, info.Name, info.Kind, info.Version ?? "?", info.Status);
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            foreach (var l in _loaders)
            {
                l.Dispose();
            }

            _loaders.Clear();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3001, LogLevel.Information, "Plugin {Name} ({Kind} {Version}): {Status}")]
        public static partial void PluginFound(ILogger logger, string name, string kind, string version, string status);

        [LoggerMessage(3002, LogLevel.Warning, "Plugin {Name} at {Path} refused: {Reason}")]
        public static partial void PluginRefused(ILogger logger, string name, string path, string reason);

        [LoggerMessage(3004, LogLevel.Warning, "Plugin folder {Name}: hot reload unavailable ({Reason}); loaded without it")]
        public static partial void HotReloadUnavailable(ILogger logger, string name, string reason);

        [LoggerMessage(3003, LogLevel.Information, "Plugin {Name} reloaded from disk: version {Version}, {Status} {Reason}")]
        public static partial void PluginReloaded(ILogger logger, string name, string version, string status, string reason);
    }
}
