using System.Net;
using System.Net.Sockets;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>dataPlane</c> section: the source and, per source, its settings (the plugin's name and commit timeout, the
/// feed port, the generator's rate and address base). Collects every error.
/// </summary>
internal static class DataPlaneValidator
{
    /// <returns>The generator's first IPv4 source address as a number (0 unless source is <c>generator</c>).</returns>
    public static uint Validate(DataPlaneConfig dp, ConfigurationErrors errors)
    {
        if (dp.Source is not (DataPlaneConfig.SourceGenerator or DataPlaneConfig.SourceApi or DataPlaneConfig.SourceNone or DataPlaneConfig.SourceFeed or DataPlaneConfig.SourcePlugin))
        {
            errors.Add("dataPlane.source", $"expected 'generator', 'api', 'feed', 'plugin' or 'none', found '{dp.Source}'");
            return 0;
        }

        if (dp.Source == DataPlaneConfig.SourcePlugin)
        {
            if (string.IsNullOrWhiteSpace(dp.Plugin))
            {
                errors.Add("dataPlane.plugin", "expected the name of a data-plane plugin (for example 'trace-replay') for source 'plugin'");
            }

            if (dp.CommitTimeoutSeconds is < 1 or > 3600)
            {
                errors.Add("dataPlane.commitTimeoutSeconds", $"expected 1 to 3600, found {dp.CommitTimeoutSeconds}");
            }
        }
        else if (dp.Plugin is not null || dp.Settings is not null)
        {
            errors.Add($"dataPlane.{(dp.Plugin is not null ? "plugin" : "settings")}", $"only used with source 'plugin', found source '{dp.Source}'");
        }

        if (dp.Source == DataPlaneConfig.SourceFeed && dp.FeedPort is < 1 or > 65535)
        {
            errors.Add("dataPlane.feedPort", $"expected a TCP port 1 to 65535 for source 'feed', found {dp.FeedPort}");
        }

        return dp.Source == DataPlaneConfig.SourceGenerator ? ValidateGenerator(dp.Generator, errors) : 0;
    }

    private static uint ValidateGenerator(GeneratorConfig g, ConfigurationErrors errors)
    {
        if (g.Connections is < 1 or > 50_000_000)
        {
            errors.Add("dataPlane.generator.connections", $"expected 1 to 50000000, found {g.Connections}");
        }

        if (!(g.ChangesPerSecond > 0 && g.ChangesPerSecond <= 10_000_000))
        {
            errors.Add("dataPlane.generator.changesPerSecond", $"expected a rate in (0, 10000000], found {g.ChangesPerSecond}");
        }

        if (g.MaxChanges < 0)
        {
            errors.Add("dataPlane.generator.maxChanges", $"expected 0 (no limit) or a positive count, found {g.MaxChanges}");
        }

        if (!(g.Ipv6Share >= 0 && g.Ipv6Share <= 1))
        {
            errors.Add("dataPlane.generator.ipv6Share", $"expected a share from 0 to 1, found {g.Ipv6Share}");
        }

        if (!IPAddress.TryParse(g.SourceBase, out var b) || b.AddressFamily != AddressFamily.InterNetwork)
        {
            errors.Add("dataPlane.generator.sourceBase", $"expected an IPv4 address like '10.0.0.0', found '{g.SourceBase}'");
            return 0;
        }

        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b.GetAddressBytes());
    }
}
