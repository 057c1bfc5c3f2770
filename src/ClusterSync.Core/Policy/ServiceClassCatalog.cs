using System.Collections.Frozen;
using ClusterSync.Classification;
using ClusterSync.Connections;

namespace ClusterSync.Policy;

/// <summary>
/// The node's service classes, numbered in configuration order (the number travels in each record),
/// and the classifier in use. Unknown class names from a classifier fall back to the default class and are counted.
/// </summary>
internal sealed class ServiceClassCatalog
{
    private readonly FrozenDictionary<string, byte> _ids;
    private readonly ServiceClassDefinition[] _classes;
    private readonly IConnectionClassifier _classifier;
    private long _unknownClass;
    private long _classifierFailures;

    public ServiceClassCatalog(PolicyOptions options, IConnectionClassifier? classifier = null)
    {
        var errors = options.Validate("policy").ToList();
        if (errors.Count > 0)
        {
            throw new ConfigurationException(errors);
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

    public string ClassifierName => _classifier.Name;

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

        if (name is null)
        {
            return DefaultId;
        }

        if (_ids.TryGetValue(name, out var id))
        {
            return id;
        }

        Interlocked.Increment(ref _unknownClass);
        return DefaultId;
    }
}
