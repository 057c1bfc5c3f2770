using ClusterSync.Membership;
using ClusterSync.Security;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>cluster</c> section but its members (<see cref="MembersValidator"/>): the transport name, the mode, the key
/// file (loaded here, once) or an explicit <c>insecure</c>, and <c>aloneAfter</c>. Collects every error.
/// </summary>
internal static class ClusterValidator
{
    public static (ClusterMode Mode, ClusterKey? Key) Validate(NodeConfig c, string file, ConfigurationErrors errors)
    {
        var cluster = c.Cluster;
        if (string.IsNullOrWhiteSpace(cluster.Transport))
        {
            errors.Add("cluster.transport", $"expected '{ClusterConfig.TransportUdp}' or the name of a transport plugin, found an empty name");
        }

        var mode = ClusterMode.HighAvailability;
        if (cluster.Mode == ClusterConfig.ModeLoadSharing)
        {
            mode = ClusterMode.LoadSharing;
        }
        else if (cluster.Mode != ClusterConfig.ModeHighAvailability)
        {
            errors.Add("cluster.mode", $"expected '{ClusterConfig.ModeHighAvailability}' or '{ClusterConfig.ModeLoadSharing}', found '{cluster.Mode}'");
        }

        var key = LoadKey(cluster, file, errors);

        // aloneAfter: shorter than the listening a starting member does anyway (three dead intervals) would have no
        // effect; the upper bound keeps a typo from leaving a lone member waiting for days.
        double minAloneMs = c.Sync.HeartbeatInterval.TotalMilliseconds * c.Sync.DeadAfterMissedHeartbeats * 3;
        if (!(cluster.AloneAfter.TotalMilliseconds >= minAloneMs && cluster.AloneAfter <= ClusterConfig.MaxAloneAfter))
        {
            errors.Add("cluster.aloneAfter", string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"expected a duration from three dead intervals ({minAloneMs} ms: sync.heartbeatInterval × sync.deadAfterMissedHeartbeats × 3) up to 1h, found {DurationJsonConverter.Format(cluster.AloneAfter)}"));
        }

        return (mode, key);
    }

    private static ClusterKey? LoadKey(ClusterConfig cluster, string file, ConfigurationErrors errors)
    {
        bool hasKeyFile = !string.IsNullOrWhiteSpace(cluster.KeyFile);
        if (cluster.Insecure && hasKeyFile)
        {
            errors.Add("cluster.insecure", "'true' contradicts cluster.keyFile; expected either a key file or 'insecure: true', not both");
            return null;
        }

        if (!cluster.Insecure && !hasKeyFile)
        {
            errors.Add("cluster.keyFile", "expected the path of the cluster key file (make one with 'clustersync keygen --out FILE'); running without encryption needs 'cluster.insecure: true', set explicitly");
            return null;
        }

        if (!hasKeyFile)
        {
            return null;
        }

        var keyPath = Path.GetFullPath(cluster.KeyFile!, Path.GetDirectoryName(file)!);
        if (!File.Exists(keyPath))
        {
            errors.Add("cluster.keyFile", $"{keyPath}: file not found; expected a key file made by 'clustersync keygen --out {cluster.KeyFile}'");
            return null;
        }

        try
        {
            return ClusterKey.Load(keyPath);
        }
        catch (ConfigurationException ex)
        {
            errors.Add("cluster.keyFile", ex);
            return null;
        }
    }
}
