using System.Collections;
using System.Net;
using System.Reflection;
using System.Text.Json;
using ClusterSync.DataPlane;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// Reads a node configuration file and validates it as a whole: every problem is reported at once, each as
/// <c>FILE: json.path: what was expected</c>, in one <see cref="ConfigurationException"/> (exit code 2).
/// </summary>
public static class NodeConfigLoader
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        Converters = { new DurationJsonConverter() },
    };

    private static readonly NullabilityInfoContext s_nullability = new();

    public static NodeModel Load(string path) => Load(path, null);

    /// <summary>Loads, lets <paramref name="adjust"/> override settings (for example <c>clustersync replay</c>'s data plane), then validates.</summary>
    public static NodeModel Load(string path, Func<NodeConfig, NodeConfig>? adjust)
    {
        var full = System.IO.Path.GetFullPath(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw ConfigurationErrors.InFile(full, $"cannot read the configuration file: {ex.Message}");
        }

        var errors = new ConfigurationErrors(full);
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw ConfigurationErrors.InFile(full, $"expected a JSON object at the top level, found {doc.RootElement.ValueKind}");
            }

            CheckUnknown(doc.RootElement, typeof(NodeConfig), "", errors);
        }
        catch (JsonException ex)
        {
            throw ConfigurationErrors.InFile(full, $"malformed JSON at line {ex.LineNumber + 1}, position {ex.BytePositionInLine + 1}: {Clean(ex)}");
        }

        NodeConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<NodeConfig>(bytes, JsonOptions);
        }
        catch (JsonException ex)
        {
            errors.Add(ConfigPath(ex.Path), $"{Clean(ex)} (line {ex.LineNumber + 1}, position {ex.BytePositionInLine + 1})");
            throw errors.ToException();
        }

        // Unknown settings are reported together with everything else; nulls stop here (nothing to validate).
        int before = errors.Count;
        CheckNulls(config!, "", errors);
        if (errors.Count > before)
        {
            throw errors.ToException();
        }

        var loaded = Validate(adjust is null ? config! : adjust(config!), full, errors);
        errors.ThrowIfAny();
        return loaded!;
    }

    /// <summary>
    /// Runs every section's validator (each collects all of its errors with their paths) and, when none reported
    /// an error, resolves the plugins it names and builds the node model: the key, token and model loaded once, the
    /// endpoints, the engine options, the plugins.
    /// </summary>
    private static NodeModel? Validate(NodeConfig c, string file, ConfigurationErrors errors)
    {
        var topology = MembersValidator.Validate(c.Cluster, errors);
        var (mode, key) = ClusterValidator.Validate(c, file, errors);
        var (selfIndex, controlToken, stateDirectory, controlCertificate) = NodeSectionValidator.Validate(c, file, topology, errors);
        SyncValidator.Validate(c, errors);
        var pluginDirectory = PluginsValidator.Validate(c.Plugins, file, errors);
        var model = AdaptiveValidator.Validate(c, file, errors);
        TelemetryValidator.Validate(c, errors);
        HooksValidator.Validate(c, file, errors);
        uint sourceBase = DataPlaneValidator.Validate(c.DataPlane, errors);
        if (errors.Count > 0 || selfIndex < 0 || !topology.Complete)
        {
            controlCertificate?.Dispose();
            return null;
        }

        var members = c.Cluster.Members;
        var links = topology.Links.Select(l => l!).ToList();
        var peers = Enumerable.Range(0, members.Count).Where(i => i != selfIndex).ToList();
        var self = members[selfIndex];
        var engine = c.Sync.ToEngineOptions((byte)self.Id, peers.Select(i => (byte)members[i].Id).ToList(), c.Cluster.Insecure, c.Policy);
        var localLinks = links[selfIndex].Select(l => l.EndPoint).ToList();
        var peerLinks = Enumerable.Range(0, links[selfIndex].Count).Select(l => (IReadOnlyList<IPEndPoint>)peers.Select(i => links[i][l].EndPoint).ToList()).ToList();
        var fullSync = new IPEndPoint(localLinks[0].Address, self.FullSyncPort);
        var peerFullSync = peers.Select(i => new IPEndPoint(links[i][0].EndPoint.Address, members[i].FullSyncPort)).ToList();
        var syncLinks = c.Cluster.Transport == ClusterConfig.TransportUdp ? SyncLinkEndpoints(localLinks, peerLinks, fullSync, peerFullSync) : [];

        // Last: the plugins the configuration names, created from their settings (needs every other setting valid).
        var plugins = PluginResolver.Resolve(c, file, pluginDirectory, (byte)self.Id, syncLinks, errors);
        if (plugins is null)
        {
            controlCertificate?.Dispose();
            return null;
        }

        return new NodeModel(file, c, key, self, selfIndex, localLinks[0], peers.Select(i => members[i]).ToList(),
            peers.Select(i => links[i][0].EndPoint).ToList(), engine, sourceBase)
        {
            FullSyncEndPoint = fullSync,
            PeerFullSyncEndPoints = peerFullSync,
            Mode = mode,
            EpochFilePath = System.IO.Path.Combine(stateDirectory, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"clustersync-member{self.Id}.epoch")),
            ControlToken = controlToken,
            ControlCertificate = controlCertificate,
            PluginDirectory = pluginDirectory,
            AdaptiveModel = model,
            LinkIds = links[selfIndex].Select(l => l.Id).ToList(),
            LocalLinkEndPoints = localLinks,
            PeerLinkEndPoints = peerLinks,
            SyncLinkEndpoints = syncLinks,
            Plugins = plugins,
        };
    }

    /// <summary>This member's and its peers' delta-sync (UDP, every link) and full-sync (TCP) endpoints, each once.</summary>
    private static List<SyncLinkEndpoint> SyncLinkEndpoints(List<IPEndPoint> localLinks, List<IReadOnlyList<IPEndPoint>> peerLinks, IPEndPoint fullSync, List<IPEndPoint> peerFullSync)
        => [.. localLinks.Concat(peerLinks.SelectMany(l => l)).Select(e => new SyncLinkEndpoint(e.Address, (ushort)e.Port, 17))
            .Concat(peerFullSync.Prepend(fullSync).Select(e => new SyncLinkEndpoint(e.Address, (ushort)e.Port, 6)))
            .Distinct()];

    /// <summary>Every property of the JSON that no options record has, with its path and the names that would fit.</summary>
    private static void CheckUnknown(JsonElement element, Type type, string path, ConfigurationErrors errors)
    {
        if (ElementType(type) is { } itemType)
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in element.EnumerateArray())
                {
                    CheckUnknown(item, itemType, $"{path}[{i++}]", errors);
                }
            }

            return;
        }

        if (!IsOptionsRecord(type) || element.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var properties = Settable(type).ToDictionary(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name), StringComparer.OrdinalIgnoreCase);
        foreach (var property in element.EnumerateObject())
        {
            var p = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
            if (properties.TryGetValue(property.Name, out var info))
            {
                CheckUnknown(property.Value, info.PropertyType, p, errors);
            }
            else
            {
                errors.Add(p, $"unknown setting; expected one of {string.Join(", ", properties.Keys)}");
            }
        }
    }

    /// <summary>Every <c>null</c> where the options records allow none (<c>"cluster": null</c>, a null list item).</summary>
    private static void CheckNulls(object value, string path, ConfigurationErrors errors)
    {
        foreach (var p in Settable(value.GetType()))
        {
            var name = path.Length == 0 ? JsonNamingPolicy.CamelCase.ConvertName(p.Name) : $"{path}.{JsonNamingPolicy.CamelCase.ConvertName(p.Name)}";
            var v = p.GetValue(value);
            if (v is null)
            {
                if (s_nullability.Create(p).ReadState != NullabilityState.Nullable)
                {
                    errors.Add(name, "expected a value, found null");
                }

                continue;
            }

            if (ElementType(p.PropertyType) is { } itemType && v is IEnumerable items)
            {
                int i = 0;
                foreach (var item in items)
                {
                    if (item is null)
                    {
                        errors.Add($"{name}[{i}]", "expected an object, found null");
                    }
                    else if (IsOptionsRecord(itemType))
                    {
                        CheckNulls(item, $"{name}[{i}]", errors);
                    }

                    i++;
                }
            }
            else if (IsOptionsRecord(p.PropertyType))
            {
                CheckNulls(v, name, errors);
            }
        }
    }

    private static IEnumerable<PropertyInfo> Settable(Type type)
        => type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true });

    private static bool IsOptionsRecord(Type type)
        => type.IsClass && type != typeof(string) && type.Namespace is { } ns && ns.StartsWith("ClusterSync", StringComparison.Ordinal);

    private static Type? ElementType(Type type)
        => type.IsGenericType && type.GetGenericTypeDefinition() is var d && (d == typeof(IReadOnlyList<>) || d == typeof(List<>) || d == typeof(IList<>))
            ? type.GetGenericArguments()[0]
            : null;

    private static string ConfigPath(string? jsonPath)
        => string.IsNullOrEmpty(jsonPath) || jsonPath == "$" ? "(top level)" : jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath;

    /// <summary>The exception's own words without the "Path: ... | LineNumber: ..." tail (the caller states both).</summary>
    private static string Clean(JsonException ex)
    {
        var m = ex.Message;
        int cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = m.IndexOf(" LineNumber:", StringComparison.Ordinal);
        }

        return (cut >= 0 ? m[..cut] : m).TrimEnd('.', ' ');
    }
}
