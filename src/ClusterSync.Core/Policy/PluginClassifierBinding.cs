using ClusterSync.Classification;

namespace ClusterSync.Policy;

/// <summary>How a classifier plugin is isolated (<c>plugins.classifierTimeout</c>, <c>plugins.maxFailures</c>).</summary>
public sealed record ClassifierGuardOptions
{
    /// <summary>A call running longer than this is a hang: the plugin is disabled at once and its late answer discarded.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Exceptions and unknown class names tolerated before the plugin is disabled (each failing call falls back).</summary>
    public int MaxFailures { get; init; } = 10;

    public IEnumerable<string> Validate(string path)
    {
        if (CallTimeout < TimeSpan.FromMilliseconds(1) || CallTimeout > TimeSpan.FromMinutes(1))
        {
            yield return $"{path}.classifierTimeout: expected a duration from 1ms to 1m, found {CallTimeout}";
        }

        if (MaxFailures is < 1 or > 1_000_000)
        {
            yield return $"{path}.maxFailures: expected 1 to 1000000, found {MaxFailures}";
        }
    }
}

/// <summary>
/// A classifier plugin bound to a <see cref="ServiceClassCatalog"/>: the plugin's classifier (and protocol resolver), and
/// what its isolation has counted. Disabled for good once <see cref="DisabledReason"/> is set; a hot reload binds a new one.
/// </summary>
public sealed class PluginClassifierBinding
{
    internal long CallStart;       // timestamp of the call in progress (0: none); written by the caller, read by the watchdog
    private long _calls;
    private long _exceptions;
    private long _unknownClasses;
    private long _timeouts;
    private volatile string? _disabledReason;

    public PluginClassifierBinding(string pluginName, string version, IConnectionClassifier classifier)
    {
        PluginName = pluginName;
        Version = version;
        Classifier = classifier;
        Resolver = classifier as IRelatedConnectionResolver;
    }

    public string PluginName { get; }

    public string Version { get; }

    public IConnectionClassifier Classifier { get; }

    /// <summary>The protocol-state extension, when the classifier implements it.</summary>
    public IRelatedConnectionResolver? Resolver { get; }

    public long Calls => Interlocked.Read(ref _calls);

    public long Exceptions => Interlocked.Read(ref _exceptions);

    public long UnknownClasses => Interlocked.Read(ref _unknownClasses);

    public long Timeouts => Interlocked.Read(ref _timeouts);

    public long Failures => Exceptions + UnknownClasses + Timeouts;

    public bool Disabled => _disabledReason is not null;

    public string? DisabledReason => _disabledReason;

    internal void CountCall() => _calls++;

    internal long CountException() => Interlocked.Increment(ref _exceptions);

    internal long CountUnknownClass() => Interlocked.Increment(ref _unknownClasses);

    internal void CountTimeout() => Interlocked.Increment(ref _timeouts);

    /// <summary>Disables the binding; true only for the call that disabled it.</summary>
    internal bool TryDisable(string reason) => Interlocked.CompareExchange(ref _disabledReason, reason, null) is null;
}
