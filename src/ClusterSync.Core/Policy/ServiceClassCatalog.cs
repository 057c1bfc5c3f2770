using System.Collections.Frozen;
using ClusterSync.Classification;
using ClusterSync.Connections;

namespace ClusterSync.Policy;

/// <summary>
/// The node's service classes, numbered in configuration order (the number travels in each record),
/// and the classifier in use. Unknown class names from a classifier fall back to the default class and are counted.
/// </summary>
/// <remarks>
/// Two kinds of classifier: the trusted in-process one (the built-in port/protocol rules, or one an embedding
/// application passes), called inline under the engine's table lock, and a plugin bound with <see cref="BindPlugin"/>,
/// called through <see cref="ClassifyPlugin"/> outside every engine lock and isolated: an exception or a class name
/// not in the catalog is counted and that call falls back to the in-process classifier; after
/// <see cref="ClassifierGuardOptions.MaxFailures"/> failures the plugin is disabled. A watchdog (a timer, not a task
/// per call) reads the start timestamp of the call in progress; a call older than
/// <see cref="ClassifierGuardOptions.CallTimeout"/> disables the plugin at once, and its answer, if it ever comes, is
/// discarded. The thread that made the hung call stays inside the plugin until it returns (.NET cannot abort a thread);
/// no engine lock is held meanwhile, so the engine's own threads keep replicating.
/// </remarks>
public sealed class ServiceClassCatalog : IDisposable
{
    private readonly FrozenDictionary<string, byte> _ids;
    private readonly ServiceClassDefinition[] _classes;
    private readonly IConnectionClassifier _classifier;
    private long _unknownClass;
    private long _classifierFailures;

    private readonly TimeProvider _time;
    private volatile PluginClassifierBinding? _plugin;
    private ClassifierGuardOptions _guard = new();
    private ITimer? _watchdog;

    public ServiceClassCatalog(PolicyOptions options, IConnectionClassifier? classifier = null, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        var errors = options.Validate("policy").ToList();
        if (errors.Count > 0)
        {
            throw ConfigurationErrors.All(errors);
        }

        _classes = options.Classes.Select(c => new ServiceClassDefinition(c.Name, c.Policy switch
        {
            "full" => SyncPolicy.Full,
            "none" => SyncPolicy.Never,
            _ => SyncPolicy.Delayed(TimeSpan.FromSeconds(c.DelaySeconds)),
        })).ToArray();
        _ids = _classes.Select((c, i) => KeyValuePair.Create(c.Name, (byte)i)).ToFrozenDictionary(StringComparer.Ordinal);
        DefaultId = _ids[options.DefaultClass];
        _classifier = classifier ?? new PortProtocolClassifier(options.Rules);
    }

    public byte DefaultId { get; }

    public IReadOnlyList<ServiceClassDefinition> Classes => _classes;

    public long UnknownClassCount => Interlocked.Read(ref _unknownClass);

    public long ClassifierFailures => Interlocked.Read(ref _classifierFailures);

    /// <summary>The classifier in effect: the bound plugin's name while it is enabled, else the in-process classifier's.</summary>
    public string ClassifierName => _plugin is { Disabled: false } p ? p.Classifier.Name : _classifier.Name;

    /// <summary>The in-process classifier (the fallback of a plugin).</summary>
    public string FallbackClassifierName => _classifier.Name;

    /// <summary>The bound plugin (enabled or disabled), if any.</summary>
    public PluginClassifierBinding? Plugin => _plugin;

    /// <summary>The bound plugin while it is enabled: the engine's submit path classifies new connections through it.</summary>
    public PluginClassifierBinding? ActivePlugin => _plugin is { Disabled: false } p ? p : null;

    /// <summary>Raised once when a plugin is disabled (on the submitting thread or the watchdog's), with the reason.</summary>
    public event Action<PluginClassifierBinding, string>? PluginDisabled;

    /// <summary>
    /// Binds a classifier plugin (replacing the one bound before, atomically: a hot reload). New connections are
    /// classified by it from the next submitted batch on.
    /// </summary>
    public PluginClassifierBinding BindPlugin(string pluginName, string version, IConnectionClassifier classifier, ClassifierGuardOptions? guard = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        if (guard is not null)
        {
            _guard = guard;
        }

        var binding = new PluginClassifierBinding(pluginName, version, classifier);
        _plugin = binding;
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, _guard.CallTimeout.Ticks / 4));
        lock (_classes)
        {
            _watchdog?.Dispose();
            _watchdog = _time.CreateTimer(static s => ((ServiceClassCatalog)s!).Watch(), this, period, period);
        }

        return binding;
    }

    /// <summary>Unbinds the plugin (the in-process classifier takes over).</summary>
    public void UnbindPlugin()
    {
        _plugin = null;
        lock (_classes)
        {
            _watchdog?.Dispose();
            _watchdog = null;
        }
    }

    public void Dispose() => UnbindPlugin();

    private void Watch()
    {
        var b = _plugin;
        if (b is null || b.Disabled)
        {
            return;
        }

        long start = Volatile.Read(ref b.CallStart);
        if (start != 0 && _time.GetElapsedTime(start) > _guard.CallTimeout)
        {
            b.CountTimeout();
            Disable(b, $"a call did not return within {_guard.CallTimeout.TotalMilliseconds:0} ms (hang): disabled, its answer will be discarded");
        }
    }

    private void Disable(PluginClassifierBinding b, string reason)
    {
        if (b.TryDisable(reason))
        {
            PluginDisabled?.Invoke(b, reason);
        }
    }

    /// <summary>
    /// Classifies a new connection through the plugin <paramref name="b"/> (outside the engine's locks), with its isolation;
    /// falls back to the in-process classifier for a failing call. When the plugin is a protocol plugin,
    /// <paramref name="control"/> is the control connection it ties the connection to (<paramref name="related"/> true).
    /// </summary>
    public byte ClassifyPlugin(PluginClassifierBinding b, in ConnectionKey key, out bool related, out ConnectionKey control)
    {
        related = false;
        control = default;
        string? name;
        long start = _time.GetTimestamp();
        Volatile.Write(ref b.CallStart, start == 0 ? 1 : start);
        try
        {
            name = b.Classifier.Classify(key);
            if (b.Resolver is { } resolver)
            {
                related = resolver.TryGetControlConnection(key, out control);
            }
        }
        catch (Exception ex)
        {
            Volatile.Write(ref b.CallStart, 0);
            related = false;
            if (b.CountException() >= _guard.MaxFailures)
            {
                Disable(b, $"{b.Failures} failures (the last: {ex.GetType().Name}: {ex.Message}); limit {_guard.MaxFailures}");
            }

            Interlocked.Increment(ref _classifierFailures);
            return Classify(key);
        }

        Volatile.Write(ref b.CallStart, 0);
        b.CountCall();
        if (b.Disabled)
        {
            related = false;
            return Classify(key); // disabled meanwhile (a hang detected, or another thread's failure): discard the answer
        }

        if (TryResolve(name, out var id))
        {
            return id;
        }

        related = false;
        if (b.CountUnknownClass() >= _guard.MaxFailures)
        {
            Disable(b, $"{b.Failures} failures (the last: unknown service class '{name}'); limit {_guard.MaxFailures}");
        }

        return Classify(key);
    }

    public SyncPolicy PolicyOf(byte id) => id < _classes.Length ? _classes[id].Policy : _classes[DefaultId].Policy;

    public string NameOf(byte id) => id < _classes.Length ? _classes[id].Name : "?";

    public bool TryGetId(string name, out byte id) => _ids.TryGetValue(name, out id);

    public byte Classify(in ConnectionKey key)
    {
        string? name;
        try
        {
            name = _classifier.Classify(key);
        }
        catch (Exception)
        {
            Interlocked.Increment(ref _classifierFailures);
            return DefaultId;
        }

        return TryResolve(name, out var id) ? id : DefaultId;
    }

    /// <summary>The class id of a classifier's answer (none: the default class); false, counted, for a name that is no class.</summary>
    private bool TryResolve(string? name, out byte id)
    {
        if (name is null)
        {
            id = DefaultId;
            return true;
        }

        if (_ids.TryGetValue(name, out id))
        {
            return true;
        }

        Interlocked.Increment(ref _unknownClass);
        return false;
    }
}
