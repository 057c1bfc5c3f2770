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

    /// <summary>The cluster key every member holds unless the constructor was given <c>keys</c>.</summary>
    public ClusterKey Key { get; } = ClusterKey.Generate();

    public LoopbackCluster(int members, Func<int, ClusterKey?>? keys = null, Action<FaultInjectingChannel>? faults = null,
        Func<SyncEngineOptions, SyncEngineOptions>? configure = null, TestTransport? transport = null,
        Func<int, IDatagramChannel, IDatagramChannel>? wrap = null)
    {
        keys ??= _ => Key;
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
            SubmitNext(member, generator, batch.AsSpan(0, n), now);
            done += n;
        }
    }

    /// <summary>Fills <paramref name="batch"/> with <paramref name="generator"/>'s next changes at <paramref name="now"/> (the member's clock by default) and submits them through <paramref name="member"/>.</summary>
    public static void SubmitNext(SyncEngine member, Workload.ChangeGenerator generator, Span<ConnectionEvent> batch, long? now = null)
    {
        long at = now ?? member.NowMs();
        for (int i = 0; i < batch.Length; i++)
        {
            generator.Next(ref batch[i], at);
        }

        member.Submit(batch);
    }

    /// <summary>
    /// Submits <paramref name="count"/> established TCP connections to <paramref name="member"/> in batches of 256:
    /// connection <c>i</c> is <see cref="FillKey"/>(i).
    /// </summary>
    public static void Fill(SyncEngine member, int count)
    {
        var batch = new ConnectionEvent[256];
        long now = member.NowMs();
        for (int i = 0; i < count;)
        {
            int n = Math.Min(batch.Length, count - i);
            for (int j = 0; j < n; j++)
            {
                batch[j] = ConnectionEvent.Create(ConnectionEventKind.New, FillKey(i + j), ProtocolState.TcpEstablished, 3600, now);
            }

            member.Submit(batch.AsSpan(0, n));
            i += n;
        }
    }

    /// <summary>The key of the connection number <paramref name="index"/> of <see cref="Fill"/>.</summary>
    private static ConnectionKey FillKey(int index) => ConnectionKey.IPv4(0x0B00_0000u + (uint)(index >> 16), 0xC0A8_0001, (ushort)index, 443, 6);

    /// <summary>Cuts (or heals) every member's link both ways: the members neither hear nor wait for each other.</summary>
    public void Partition(bool cut)
    {
        foreach (var fault in Faults)
        {
            fault.Partitioned = cut;
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling; false after <paramref name="timeout"/>.</summary>
    public static bool WaitUntil(Func<bool> condition, TimeSpan timeout) => Wait.Until(condition, timeout);

    /// <summary>Waits until <paramref name="a"/> and <paramref name="b"/> hold identical live tables; fails the test, with the count of differences, after <paramref name="timeout"/>.</summary>
    public static void AssertIdentical(SyncEngine a, SyncEngine b, TimeSpan timeout)
        => Assert.True(WaitUntil(() => Differences(a, b) == 0, timeout), $"tables of members {a.MemberId} and {b.MemberId} differ by {Differences(a, b)}");

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
