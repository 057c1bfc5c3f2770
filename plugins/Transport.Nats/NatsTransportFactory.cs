using ClusterSync.Plugins;
using NATS.Client.Core;

[assembly: ClusterSyncPlugin(ClusterSync.Transport.Nats.NatsTransportFactory.TransportName, "1.0.0", PluginKind.Transport)]

namespace ClusterSync.Transport.Nats;

/// <summary>
/// The <c>nats</c> transport: delta sync, the control channel and full sync through a NATS server. The engine seals every
/// datagram and full sync encrypts its stream, so NATS only carries opaque bytes. Addresses are described on
/// <see cref="NatsAddress"/>: the local address is <c>nats://host:port/&lt;subject root&gt;</c>, each peer its subject root.
/// </summary>
public sealed class NatsTransportFactory : ISyncTransportFactory, IStreamTransportFactory
{
    /// <summary>The configuration name of this transport.</summary>
    public const string TransportName = "nats";

    private static readonly TimeSpan s_connectTimeout = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public string Name => TransportName;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">An address is not a NATS address; the message names every bad field.</exception>
    /// <exception cref="IOException">The NATS server cannot be reached.</exception>
    public IDatagramChannel CreateDatagramChannel(TransportEndpoints endpoints, int maxDatagramSize)
    {
        var (url, root, peers) = Parse(endpoints);
        return Open(url, () => NatsDatagramChannel.OpenAsync(Options(url, root, "delta"), root, peers, maxDatagramSize));
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">An address is not a NATS address; the message names every bad field.</exception>
    /// <exception cref="IOException">The NATS server cannot be reached.</exception>
    public IStreamChannel CreateStreamChannel(TransportEndpoints endpoints)
    {
        var (url, root, peers) = Parse(endpoints);
        return Open(url, () => NatsStreamChannel.OpenAsync(Options(url, root, "fullsync"), root, peers));
    }

    private static NatsOpts Options(string url, string root, string purpose) => NatsOpts.Default with
    {
        Url = url,
        Name = $"clustersync {root} {purpose}",
        ConnectTimeout = s_connectTimeout,
        // Reconnect for ever, starting fast: a member outlives a NATS restart; what was lost meanwhile delta sync repairs.
        MaxReconnectRetry = -1,
        ReconnectWaitMin = TimeSpan.FromMilliseconds(100),
        ReconnectWaitMax = TimeSpan.FromSeconds(2),
    };

    private static T Open<T>(string url, Func<Task<T>> open)
    {
        try
        {
            return open().GetAwaiter().GetResult();
        }
        catch (NatsException ex)
        {
            throw new IOException($"transport.local: cannot connect to the NATS server at {url}: {ex.Message}", ex);
        }
    }

    private static (string Url, string Root, List<string> Peers) Parse(TransportEndpoints endpoints)
    {
        var errors = new List<string>();
        if (!NatsAddress.TryParseLocal(endpoints.LocalAddress, out var url, out var root, out var error))
        {
            errors.Add($"transport.local: {error}");
        }

        var peers = new List<string>();
        for (int i = 0; i < endpoints.PeerAddresses.Count; i++)
        {
            if (NatsAddress.TryParsePeer(endpoints.PeerAddresses[i], out var peer, out var e))
            {
                if (peer == root || peers.Contains(peer))
                {
                    errors.Add($"transport.peers[{i}]: expected a subject root different from this member's and the other peers', found '{peer}' twice");
                }

                peers.Add(peer);
            }
            else
            {
                errors.Add($"transport.peers[{i}]: {e}");
            }
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(endpoints));
        }

        return (url, root, peers);
    }
}
