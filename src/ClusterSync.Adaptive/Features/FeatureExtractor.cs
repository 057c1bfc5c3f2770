using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ClusterSync.Connections;
using ClusterSync.Workload.Trace;

namespace ClusterSync.Adaptive.Features;

/// <summary>
/// The one feature code path, used by training (from trace records) and by the runtime (from connection keys).
/// <see cref="Write"/> allocates nothing.
/// </summary>
public static class FeatureExtractor
{
    /// <summary>Writes the <see cref="FeatureSchema.Count"/> features of <paramref name="c"/> into <paramref name="features"/>.</summary>
    public static void Write(in ConnectionStart c, Span<float> features)
    {
        if (features.Length < FeatureSchema.Count)
        {
            throw new ArgumentException($"needs {FeatureSchema.Count} floats", nameof(features));
        }

        features[FeatureSchema.Protocol] = c.Protocol;
        features[FeatureSchema.DestinationPort] = c.DestinationPort;
        features[FeatureSchema.SourcePort] = c.SourcePort;
        // The service port is usually the lower one, whichever side opened the flow.
        features[FeatureSchema.LowPort] = Math.Min(c.SourcePort, c.DestinationPort);
        features[FeatureSchema.DestinationWellKnown] = c.DestinationPort is > 0 and < 1024 ? 1f : 0f;
        features[FeatureSchema.SourceWellKnown] = c.SourcePort is > 0 and < 1024 ? 1f : 0f;
        features[FeatureSchema.SourceInternal] = c.SourceInternal ? 1f : 0f;
        features[FeatureSchema.DestinationInternal] = c.DestinationInternal ? 1f : 0f;
        features[FeatureSchema.HourOfDay] = (float)HourOfDay(c.StartUnixSeconds);
    }

    /// <summary>A new connection seen by the data plane at <paramref name="startUnixSeconds"/>.</summary>
    public static ConnectionStart FromKey(in ConnectionKey key, double startUnixSeconds)
    {
        bool src, dst;
        if (key.IsIPv6)
        {
            src = IsInternalV6(key.SourceHigh);
            dst = IsInternalV6(key.DestinationHigh);
        }
        else
        {
            src = IsInternalV4(key.SourceV4);
            dst = IsInternalV4(key.DestinationV4);
        }

        return new ConnectionStart(key.Protocol, key.SourcePort, key.DestinationPort, src, dst, startUnixSeconds);
    }

    /// <summary>A connection of a trace, as it was known when it started.</summary>
    public static ConnectionStart FromTrace(in TraceRecord r)
        => new(r.Protocol, r.SourcePort, r.DestinationPort, IsInternal(r.SourceAddress), IsInternal(r.DestinationAddress), r.StartUnixSeconds);

    public static double HourOfDay(double unixSeconds)
    {
        double s = unixSeconds % 86_400.0;
        return (s < 0 ? s + 86_400.0 : s) / 3600.0;
    }

    /// <summary>
    /// Inside the protected network: RFC 1918, loopback, link-local and CGNAT IPv4; ULA, link-local and loopback
    /// IPv6; for traces that only know autonomous systems (<c>AS&lt;n&gt;</c>), the LUFlow university AS 786.
    /// </summary>
    public static bool IsInternal(string address)
    {
        if (address.StartsWith("AS", StringComparison.OrdinalIgnoreCase))
        {
            return string.Equals(address, "AS786", StringComparison.OrdinalIgnoreCase);
        }

        if (!IPAddress.TryParse(address, out var ip))
        {
            return false;
        }

        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }

        Span<byte> b = stackalloc byte[16];
        ip.TryWriteBytes(b, out int n);
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            return IsInternalV4((uint)((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]));
        }

        ulong hi = 0;
        for (int i = 0; i < 8 && i < n; i++)
        {
            hi = (hi << 8) | b[i];
        }

        return IsInternalV6(hi) || IPAddress.IsLoopback(ip);
    }

    private static bool IsInternalV4(uint a)
        => (a >> 24) == 10
           || (a >> 20) == 0xAC1          // 172.16/12
           || (a >> 16) == 0xC0A8         // 192.168/16
           || (a >> 24) == 127
           || (a >> 16) == 0xA9FE         // 169.254/16
           || (a >> 22) == (100u << 2 | 1); // 100.64/10

    private static bool IsInternalV6(ulong high)
        => (high >> 57) == (0xFC >> 1)     // fc00::/7
           || (high >> 54) == (0xFE80 >> 6); // fe80::/10

    /// <summary>For messages: the feature vector as text.</summary>
    public static string Describe(ReadOnlySpan<float> features)
    {
        var parts = new string[FeatureSchema.Count];
        for (int i = 0; i < FeatureSchema.Count; i++)
        {
            parts[i] = $"{FeatureSchema.Names[i]}={features[i].ToString(CultureInfo.InvariantCulture)}";
        }

        return string.Join(' ', parts);
    }
}
