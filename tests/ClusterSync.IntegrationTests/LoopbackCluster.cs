using System.Diagnostics;
using System.Net;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.IntegrationTests.Transport;
using ClusterSync.Policy;
using ClusterSync.Security;
using ClusterSync.Transport;

namespace ClusterSync.IntegrationTests;

/// <summary>
/// N members on 127.0.0.1 with ephemeral UDP ports (or another <see cref="TestTransport"/>, such as the NATS plugin),
/// optionally behind fault-injecting wrappers.
/// </summary>
internal sealed class LoopbackCluster : IDisposable
{
    public static readonly PolicyOptions SyncEverything = new()
    {
        Classes = [new ServiceClassOptions { Name = "default", Policy = "full" }],
        Rules = [],
    };

    public List<SyncEngine> Members { get; } = [];

    public List<FaultInjectingChannel> Faults { get; } = [];

    public List<UdpDatagramChannel> Sockets { get; } = [];

    public LoopbackCluster(int members, Func<int, ClusterKey?>? keys = null, Action<FaultInjectingChannel>? faults = null,
        Func<SyncEngineOptions, SyncEngineOptions>? configure = null, TestTransport? transport = null,
        Func<int, IDatagramChannel, IDatagramChannel>? wrap = null)
    {
        var clusterKey = ClusterKey.Generate();
        keys ??= _ => clusterKey;
        IReadOnlyList<IDatagramChannel>? channels = transport?.CreateChannels(members);
        if (channels is null)
        {
            for (int i = 0; i < members; i++)
            {
                Sockets.Add(new UdpDatagramChannel(new IPEndPoint(IPAddress.Loopback, 0), [], 1500));
            }
        }

        for (int i = 0; i < members; i++)
        {
            var peers = Enumerable.Range(0, members).Where(j => j != i).ToList();
            IDatagramChannel channel;
            if (channels is null)
            {
                Sockets[i].SetPeers(peers.Select(j => Sockets[j].LocalEndPoint).ToList());
                channel = Sockets[i];
            }
            else
            {
                channel = channels[i];
            }

            channel = wrap?.Invoke(i, channel) ?? channel; // a test's tap between the transport and the faults
            var fault = new FaultInjectingChannel(channel, seed: 1000 + i);
            faults?.Invoke(fault);
            Faults.Add(fault);
            var options = new SyncEngineOptions
            {
                MemberId = (byte)(i + 1),
                PeerMemberIds = peers.Select(j => (byte)(j + 1)).ToList(),
                Policy = SyncEverything,
                TableCapacity = 1 << 16,
            };
            options = configure?.Invoke(options) ?? options;
            Members.Add(new SyncEngine(options, fault, keys(i)));
        }

        foreach (var m in Members)
        {
            m.Start();
        }
    }

    /// <summary>Drives <paramref name="changes"/> generated changes through <paramref name="member"/>, in small batches.</summary>
    public static void Drive(SyncEngine member, int changes, int seed, int population, uint addressBase = 0x0A00_0000)
    {
        var generator = new Workload.ChangeGenerator(seed, population, addressBase: addressBase);
        var batch = new ConnectionEvent[64];
        long now = member.NowMs();
        for (int done = 0; done < changes;)
        {
            int n = Math.Min(batch.Length, changes - done);
            for (int i = 0; i < n; i++)
            {
                generator.Next(ref batch[i], now);
            }

            member.Submit(batch.AsSpan(0, n));
            done += n;
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling; false after <paramref name="timeout"/>.</summary>
    public static bool WaitUntil(Func<bool> condition, TimeSpan timeout) => Wait.Until(condition, timeout);

    /// <summary>Differences between two members' live tables (key present on one side only, or different state).</summary>
    public static int Differences(SyncEngine a, SyncEngine b)
    {
        var left = a.SnapshotTable().ToDictionary(kv => kv.Key, kv => kv.Value);
        var right = b.SnapshotTable();
        int diff = Math.Abs(left.Count - right.Count);
        foreach (var (key, entry) in right)
        {
            if (!left.TryGetValue(key, out var other) || !other.SameState(entry))
            {
                diff++;
            }
        }

        return diff;
    }

    public void Dispose()
    {
        foreach (var m in Members)
        {
            m.Dispose();
        }
    }
}
