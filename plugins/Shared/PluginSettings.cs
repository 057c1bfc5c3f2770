using System.Text.Json;

namespace ClusterSync.Plugins;

/// <summary>
/// The settings object a plugin gets from the node (<c>dataPlane.settings</c>, <c>plugins.settings.&lt;name&gt;</c>).
/// Plugins share no assembly but the contract, so this file is compiled into each plugin that uses it (linked from
/// plugins/Shared/).
/// </summary>
internal static class PluginSettings
{
    /// <summary>
    /// The properties of <paramref name="element"/>: none when it is absent or null; an <see cref="ArgumentException"/>
    /// listing the settings (<paramref name="names"/>) when it is not an object.
    /// </summary>
    public static IEnumerable<JsonProperty> Properties(JsonElement? element, string names)
    {
        if (element is not { } e || e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return [];
        }

        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new ArgumentException($"expected an object of settings ({names}), found {e.ValueKind}");
        }

        return e.EnumerateObject();
    }
}
