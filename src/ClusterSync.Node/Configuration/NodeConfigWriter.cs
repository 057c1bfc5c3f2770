using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The one way to write a node configuration file: a <see cref="NodeConfig"/> record serialized with the options
/// <see cref="NodeConfigLoader"/> reads it with (camelCase names, durations as <c>"100ms"</c>/<c>"2s"</c>), only the
/// settable properties, nulls left out. What <see cref="Write"/> writes, <see cref="NodeConfigLoader.Load(string)"/>
/// reads back to an equal record. Used by <c>clustersync demo</c> and the process-test harness.
/// </summary>
public static class NodeConfigWriter
{
    /// <summary>The loader's options, indented, without nulls and without get-only (computed) properties.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new(NodeConfigLoader.JsonOptions)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { OnlySettable } },
    };

    /// <summary>The configuration as the JSON text of a configuration file.</summary>
    public static string Serialize(NodeConfig config) => JsonSerializer.Serialize(config, JsonOptions);

    /// <summary>Writes <paramref name="config"/> to <paramref name="path"/> (replacing it) and returns <paramref name="path"/>.</summary>
    public static string Write(string path, NodeConfig config)
    {
        File.WriteAllText(path, Serialize(config));
        return path;
    }

    /// <summary>
    /// The member list of a cluster on one host: member <c>i</c> (1 to the number of ports) syncs on
    /// <c>HOST:syncPorts[i - 1]</c>, serves full sync on <c>fullSyncPorts[i - 1]</c> and has priority <c>110 - 10 i</c>
    /// (member 1 outranks member 2, ...); <paramref name="transportAddress"/> gives each member's plugin-transport address.
    /// </summary>
    public static IReadOnlyList<MemberConfig> HostMembers(IReadOnlyList<int> syncPorts, IReadOnlyList<int> fullSyncPorts,
        string host = "127.0.0.1", Func<int, string>? transportAddress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(fullSyncPorts.Count, syncPorts.Count);
        return Enumerable.Range(1, syncPorts.Count).Select(i => new MemberConfig
        {
            Id = i,
            Address = string.Create(CultureInfo.InvariantCulture, $"{host}:{syncPorts[i - 1]}"),
            Priority = 110 - (10 * i),
            FullSyncPort = fullSyncPorts[i - 1],
            TransportAddress = transportAddress?.Invoke(i),
        }).ToList();
    }

    private static void OnlySettable(JsonTypeInfo info)
    {
        if (info.Kind != JsonTypeInfoKind.Object)
        {
            return;
        }

        for (int i = info.Properties.Count - 1; i >= 0; i--)
        {
            if (info.Properties[i].Set is null)
            {
                info.Properties.RemoveAt(i);
            }
            else if (info.Type == typeof(PluginsConfig) && info.Properties[i].Name == "classifier")
            {
                // The default classifier left unnamed stays unnamed: named, it must be deployed (built-in rules otherwise).
                info.Properties[i].ShouldSerialize = (config, _) => ((PluginsConfig)config).ClassifierNamed;
            }
        }
    }
}
