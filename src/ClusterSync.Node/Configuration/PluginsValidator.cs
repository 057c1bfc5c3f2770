namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>plugins</c> section: the classifier by name, its guard (timeout, failures), the disabled names. The plugin
/// directory is resolved here, once, relative to the configuration file. Collects every error.
/// </summary>
internal static class PluginsValidator
{
    /// <returns>The plugin directory (full path).</returns>
    public static string Validate(PluginsConfig plugins, string file, ConfigurationErrors errors)
    {
        errors.AddRange(plugins.Validate("plugins"));
        for (int i = 0; i < plugins.Disabled.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(plugins.Disabled[i]))
            {
                errors.Add($"plugins.disabled[{i}]", "expected a plugin name, found an empty name");
            }
        }

        if (plugins.Directory is { } dir && string.IsNullOrWhiteSpace(dir))
        {
            errors.Add("plugins.directory", "expected the path of the plugin directory (or no setting: plugins/ next to the clustersync binary), found an empty path");
            return PluginsConfig.DefaultDirectory;
        }

        return plugins.ResolveDirectory(file);
    }
}
