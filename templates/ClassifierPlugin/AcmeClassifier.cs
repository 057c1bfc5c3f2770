using System.Globalization;
using System.Text.Json;
using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

// The manifest: the name a node's configuration selects (plugins.classifier), the plugin's own version, its kind.
// The contract version is filled in from the ClusterSync.Abstractions this is compiled against.
[assembly: ClusterSyncPlugin("acme", "1.0.0", PluginKind.Classifier)]

namespace Acme.ClassifierPlugin;

/// <summary>The entry point: created once by the host with this public parameterless constructor.</summary>
public sealed class AcmeClassifierFactory : IConnectionClassifierFactory
{
    /// <summary>Must equal the manifest's name.</summary>
    public string Name => "acme";

    /// <summary>
    /// Called once when the node binds the plugin (and again after a hot reload). Settings come from the node's
    /// <c>plugins.settings.acme</c>, for example <c>{ "ports": { "8443": "mission-critical", "9000": "short-lived" } }</c>.
    /// Throw here for bad settings: the node refuses the plugin and keeps its built-in rules.
    /// </summary>
    public IConnectionClassifier Create(ClassifierContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var classes = new string?[65536];
        if (context.Settings is { ValueKind: JsonValueKind.Object } settings && settings.TryGetProperty("ports", out var ports))
        {
            foreach (var p in ports.EnumerateObject())
            {
                var cls = p.Value.GetString() ?? "";
                if (!context.ServiceClasses.Contains(cls))
                {
                    throw new ArgumentException($"ports.{p.Name}: '{cls}' is not one of the node's classes ({string.Join(", ", context.ServiceClasses)})");
                }

                classes[ushort.Parse(p.Name, CultureInfo.InvariantCulture)] = cls;
            }
        }

        return new AcmeClassifier(classes);
    }
}

/// <summary>
/// Called once per new connection on the data-plane thread: answer fast, allocate nothing, never block. Return a class
/// name the node configures, or null for the node's default class. Exceptions, unknown names and calls slower than
/// plugins.classifierTimeout are counted; past the limit the node disables the plugin and uses its built-in rules.
/// </summary>
internal sealed class AcmeClassifier(string?[] classByPort) : IConnectionClassifier
{
    public string Name => "acme";

    public string? Classify(in ConnectionKey connection) => classByPort[connection.DestinationPort];
}
