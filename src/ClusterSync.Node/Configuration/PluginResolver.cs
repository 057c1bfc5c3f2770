using System.Text.Json;
using ClusterSync.Classification;
using ClusterSync.DataPlane;
using ClusterSync.Node.Plugins;
using ClusterSync.Policy;
using ClusterSync.Transport;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// Resolves the plugins a valid configuration names, once, as the last step of validation: loads the plugin directory,
/// finds the classifier (<c>plugins.classifier</c>), the transport (<c>cluster.transport</c>) and the data plane
/// (<c>dataPlane.plugin</c>) by name and has their factories create what the node uses from their settings. A plugin
/// that is missing, refused by the catalog (another contract version, no factory, disabled) or whose factory refuses
/// its settings is an error at the setting that names it. A transport's addresses are checked when its channel opens
/// (<see cref="NodeHost"/>): its contract has no call that checks them without connecting.
/// </summary>
internal static class PluginResolver
{
    /// <returns>The resolved plugins, or null when an error was added (nothing created is left open).</returns>
    public static ResolvedPlugins? Resolve(NodeConfig c, string file, string directory, byte memberId, IReadOnlyList<SyncLinkEndpoint> syncLinks, ConfigurationErrors errors)
    {
        int before = errors.Count;
        var catalog = PluginCatalog.Load(directory, c.Plugins.HotReload, c.Plugins.Disabled, null);
        var classifier = Classifier(c.Plugins, c.Policy, catalog, errors, out var unavailable);
        var transport = c.Cluster.Transport == ClusterConfig.TransportUdp ? null : Transport(c.Cluster.Transport, catalog, errors);
        var dataPlane = c.DataPlane.Source == DataPlaneConfig.SourcePlugin ? DataPlane(c, memberId, syncLinks, catalog, errors) : null;
        var resolved = new ResolvedPlugins(catalog, classifier, unavailable, transport, dataPlane);
        if (errors.Count == before)
        {
            return resolved;
        }

        resolved.Dispose();
        return null;
    }

    /// <summary>
    /// The plugin directory and classifier of a <c>plugins</c> section alone, for an engine outside a node; throws
    /// <see cref="ConfigurationException"/> as validation reports.
    /// </summary>
    public static ResolvedPlugins ResolveClassifierOnly(PluginsConfig plugins, string? configPath, PolicyOptions policy)
    {
        var errors = new ConfigurationErrors(configPath);
        var catalog = PluginCatalog.Load(plugins.ResolveDirectory(configPath), plugins.HotReload, plugins.Disabled, null);
        var classifier = Classifier(plugins, policy, catalog, errors, out var unavailable);
        if (errors.Count > 0)
        {
            catalog.Dispose();
            errors.ThrowIfAny();
        }

        return new ResolvedPlugins(catalog, classifier, unavailable, null, null);
    }

    /// <summary>
    /// Creates the classifier of <paramref name="factory"/> from the node's policy and the plugin's settings; a refusal
    /// is returned as its message (also on a hot reload, where the classifier in use stays).
    /// </summary>
    public static IConnectionClassifier? CreateClassifier(IConnectionClassifierFactory factory, PolicyOptions policy, PluginsConfig plugins, out string? refused)
    {
        var context = new ClassifierContext(
            [.. policy.Classes.Select(k => k.Name)],
            policy.DefaultClass,
            [.. policy.Rules.Select(r => new ClassRule(r.Protocol, r.Ports, r.Class))],
            SettingsOf(plugins, factory.Name));
        try
        {
            refused = null;
            return factory.Create(context);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            refused = Plain(ex);
            return null;
        }
    }

    /// <summary>
    /// A plugin's refusal as the operator reads it: its message, without .NET's "(Parameter 'x')" tail of an
    /// <see cref="ArgumentException"/> (the plugin's message names the setting).
    /// </summary>
    internal static string Plain(Exception ex)
    {
        var message = ex.Message.Trim();
        if (ex is ArgumentException { ParamName: { } name } && message.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal))
        {
            message = message[..^$" (Parameter '{name}')".Length];
        }

        return message;
    }

    private static ResolvedClassifier? Classifier(PluginsConfig plugins, PolicyOptions policy, PluginCatalog catalog, ConfigurationErrors errors, out string? unavailable)
    {
        unavailable = null;
        var name = plugins.Classifier;
        if (name == PluginsConfig.BuiltInClassifier)
        {
            return null;
        }

        if (!catalog.TryGetClassifier(name, out var factory, out var info))
        {
            var why = NotLoaded(catalog, name);
            if (!plugins.ClassifierNamed)
            {
                // The default plugin is not deployed (an embedding application without plugins/): the built-in rules.
                unavailable = why;
            }
            else
            {
                errors.Add("plugins.classifier", $"expected a loaded classifier plugin named '{name}' in {catalog.Directory} (or '{PluginsConfig.BuiltInClassifier}'): {why}");
            }

            return null;
        }

        var classifier = CreateClassifier(factory, policy, plugins, out var refused);
        if (classifier is null)
        {
            errors.Add(plugins.Settings.ContainsKey(name) ? $"plugins.settings.{name}" : "plugins.classifier", $"the classifier plugin '{name}' refused its settings: {refused}");
            return null;
        }

        return new ResolvedClassifier(name, info.Version ?? "", classifier);
    }

    private static ISyncTransportFactory? Transport(string name, PluginCatalog catalog, ConfigurationErrors errors)
    {
        if (catalog.TryGetTransport(name, out var factory, out _))
        {
            return factory;
        }

        var found = catalog.Find(name);
        errors.Add("cluster.transport", $"no loaded transport plugin named '{name}' in {catalog.Directory}" + (found is null ? "" : $" ({found.Status}: {found.Reason})"));
        return null;
    }

    private static ResolvedDataPlane? DataPlane(NodeConfig c, byte memberId, IReadOnlyList<SyncLinkEndpoint> syncLinks, PluginCatalog catalog, ConfigurationErrors errors)
    {
        var name = c.DataPlane.Plugin!;
        if (!catalog.TryGetDataPlane(name, out var factory, out var info))
        {
            var found = catalog.Find(name);
            errors.Add("dataPlane.plugin", $"no loaded data-plane plugin named '{name}' in {catalog.Directory}"
                + (found is null ? "" : $" ({found.Kind}, {found.Status}: {found.Reason})"));
            return null;
        }

        var context = new DataPlaneContext(memberId, c.DataPlane.Settings ?? SettingsOf(c.Plugins, name)) { SyncLinkEndpoints = syncLinks };
        IConnectionSource? source = null;
        try
        {
            source = factory.CreateSource(context);
            var sink = factory.CreateSink(context);
            if (sink is not null)
            {
                return new ResolvedDataPlane(name, info.Version, source, sink);
            }

            errors.Add("dataPlane.plugin", $"the data-plane plugin '{name}' created no replica sink");
        }
        catch (UnauthorizedAccessException ex)
        {
            // A plugin refused access by the operating system (the conntrack plugin without CAP_NET_ADMIN): the machine,
            // not the settings, is what has to change.
            errors.Add("dataPlane.plugin", $"the data-plane plugin '{name}' was refused access by the operating system"
                + (ex.Message.Contains("CAP_NET_ADMIN", StringComparison.Ordinal) ? "" : " (a kernel data plane needs CAP_NET_ADMIN in the node's network namespace)")
                + $": {ex.Message}");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            errors.Add("dataPlane.settings", $"the data-plane plugin '{name}' refused its settings: {Plain(ex)}");
        }

        if (source is not null)
        {
            DisposeQuietly(source);
        }

        return null;
    }

    /// <summary>Disposes a plugin's source, bounded; a failure to dispose is not what the operator needs to see.</summary>
    internal static void DisposeQuietly(IConnectionSource source)
    {
        try
        {
            source.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The creation failure (or the stop) is what matters.
        }
    }

    private static JsonElement? SettingsOf(PluginsConfig plugins, string name) => plugins.Settings.TryGetValue(name, out var s) ? s : null;

    private static string NotLoaded(PluginCatalog catalog, string name)
        => catalog.Find(name) is { } found ? $"{found.Status}: {found.Reason}" : "no such plugin";
}
