namespace ClusterSync.IntegrationTests.Plugins;

/// <summary>
/// Classifier plugins loaded from disk into a member of a two-member loopback cluster, through the node's plugin path
/// (<see cref="NodePlugins"/>): a plugin that throws, one that answers an unknown class and one that hangs are each
/// disabled while the cluster keeps converging; a new version dropped into the folder replaces the classifier while
/// traffic flows.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public class ClassifierPluginTests
{
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(15);

    // Every class synchronized at once, so the tables converge whatever a classifier answers.
    internal static readonly PolicyOptions NamedClasses = new()
    {
        DefaultClass = ServiceClassNames.Default,
        Classes =
        [
            new() { Name = ServiceClassNames.MissionCritical, Policy = "full" },
            new() { Name = ServiceClassNames.ShortLived, Policy = "full" },
            new() { Name = ServiceClassNames.NonSync, Policy = "full" },
            new() { Name = ServiceClassNames.Default, Policy = "full" },
        ],
        Rules = [new() { Protocol = "tcp", Ports = "443", Class = ServiceClassNames.MissionCritical }],
    };

    private static PluginsConfig Config(PluginFiles files, string settings, int maxFailures = 5, bool hotReload = false, int timeoutMs = 250) => new()
    {
        Directory = files.Directory,
        Classifier = "test-classifier",
        MaxFailures = maxFailures,
        HotReload = hotReload,
        ClassifierTimeout = TimeSpan.FromMilliseconds(timeoutMs),
        Settings = new Dictionary<string, JsonElement> { ["test-classifier"] = JsonDocument.Parse(settings).RootElement.Clone() },
    };

    private static LoopbackCluster Pair() => new(2, configure: o => o with { Policy = NamedClasses });

    [Fact]
    public void Classify_PluginThrows_DisabledAfterLimitWhileMembersConverge()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");
        using var cluster = Pair();
        var owner = cluster.Members[0];
        using var plugins = new NodePlugins(Config(files, """{ "mode": "throw" }"""), null, owner);
        Assert.NotNull(owner.Catalog.ActivePlugin);

        LoopbackCluster.Drive(owner, 3000, seed: 11, population: 500);

        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(owner, cluster.Members[1]) == 0, Converge));
        var binding = owner.Catalog.Plugin!;
        Assert.True(binding.Disabled);
        Assert.Equal(5, binding.Exceptions);
        Assert.Null(owner.Catalog.ActivePlugin);
        var status = plugins.GetStatus();
        Assert.Equal("port-protocol (built-in)", status.Classifier);
        var info = Assert.Single(status.Plugins);
        Assert.Equal(PluginInfo.Disabled, info.Status);
        Assert.Contains("InvalidOperationException", info.Reason, StringComparison.Ordinal);
        AssertBuiltInClasses(owner);
    }

    [Fact]
    public void Classify_PluginAnswersUnknownClass_DisabledAfterLimitWhileMembersConverge()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");
        using var cluster = Pair();
        var owner = cluster.Members[0];
        using var plugins = new NodePlugins(Config(files, """{ "mode": "unknown" }""", maxFailures: 3), null, owner);

        LoopbackCluster.Drive(owner, 3000, seed: 12, population: 500);

        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(owner, cluster.Members[1]) == 0, Converge));
        var binding = owner.Catalog.Plugin!;
        Assert.True(binding.Disabled);
        Assert.Equal(3, binding.UnknownClasses);
        Assert.Contains("unknown service class 'no-such-class'", binding.DisabledReason, StringComparison.Ordinal);
        Assert.Equal(PluginInfo.Disabled, Assert.Single(plugins.GetStatus().Plugins).Status);
        AssertBuiltInClasses(owner);
    }

    [Fact]
    public void Classify_PluginHangs_WatchdogDisablesItAndOtherSubmissionsKeepSyncing()
    {
        using var files = new PluginFiles();
        files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");
        using var cluster = Pair();
        var owner = cluster.Members[0];
        using var plugins = new NodePlugins(Config(files, """{ "mode": "hang", "hangPort": 9999, "hangMs": 4000 }""", timeoutMs: 100), null, owner);
        var hungKey = ConnectionKey.IPv4(0x0B00_0001, 0x0B00_0002, 40000, 9999, 6);
        var hung = new Thread(() => owner.Submit(ConnectionEvent.Create(ConnectionEventKind.New, hungKey, ProtocolState.TcpEstablished, 600, 0)))
        {
            IsBackground = true,
        };

        hung.Start();
        Assert.True(LoopbackCluster.WaitUntil(() => owner.Catalog.Plugin!.Disabled, TimeSpan.FromSeconds(3)), "the watchdog did not disable the hung plugin");
        Assert.True(hung.IsAlive, "the hung call returned before the watchdog fired");
        LoopbackCluster.Drive(owner, 3000, seed: 13, population: 500);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(owner, cluster.Members[1]) == 0, Converge));

        Assert.True(hung.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, owner.Catalog.Plugin!.Timeouts);
        Assert.Contains("hang", owner.Catalog.Plugin.DisabledReason, StringComparison.Ordinal);
        // The late answer ("mission-critical") was discarded: the connection got the built-in rules' class and synced.
        Assert.True(LoopbackCluster.WaitUntil(() => cluster.Members[1].TryGetEntry(hungKey, out _), Converge));
        Assert.True(owner.TryGetEntry(hungKey, out var entry));
        Assert.Equal(ServiceClassNames.Default, owner.Catalog.NameOf(entry.ServiceClass));
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(owner, cluster.Members[1]) == 0, Converge));
    }

    [Fact]
    public void HotReload_NewVersionDroppedWhileTrafficFlows_SwapsClassifierWithNoLostUpdate()
    {
        using var files = new PluginFiles();
        var folder = files.Drop(PluginFiles.TestPluginOutput("TestClassifier.V1"), "TestClassifier");
        using var cluster = Pair();
        var owner = cluster.Members[0];
        using var plugins = new NodePlugins(Config(files, """{ "mode": "ok", "class": "mission-critical" }""", hotReload: true), null, owner);
        Assert.Equal("1.0.0", owner.Catalog.ActivePlugin!.Version);

        long submitted = 0;
        var stop = new ManualResetEventSlim();
        var traffic = new Thread(() =>
        {
            var generator = new Workload.ChangeGenerator(21, 2000);
            var batch = new ConnectionEvent[32];
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (!stop.IsSet && sw.Elapsed < TimeSpan.FromSeconds(30) && submitted < 2_000_000)
            {
                long now = owner.NowMs();
                for (int i = 0; i < batch.Length; i++)
                {
                    generator.Next(ref batch[i], now);
                }

                owner.Submit(batch);
                Interlocked.Add(ref submitted, batch.Length);
                // Paced at ~32,000 changes/s: ahead of that rate, wait (on the stop event: it ends at once when the test
                // stops) for as long as it takes the clock to catch up.
                double aheadMs = (Interlocked.Read(ref submitted) / 32.0) - sw.Elapsed.TotalMilliseconds;
                if (aheadMs > 0)
                {
                    stop.Wait(TimeSpan.FromMilliseconds(Math.Min(aheadMs, 100)));
                }
            }
        })
        { IsBackground = true };
        traffic.Start();
        try
        {
            Assert.True(LoopbackCluster.WaitUntil(() => Interlocked.Read(ref submitted) > 2000, TimeSpan.FromSeconds(10)));
            File.Copy(Path.Combine(PluginFiles.TestPluginOutput("TestClassifier.V2"), "TestClassifier.dll"), Path.Combine(folder, "TestClassifier.dll"), overwrite: true);
            Assert.True(LoopbackCluster.WaitUntil(() => plugins.GetStatus().Reloads == 1, TimeSpan.FromSeconds(10)), "the new version was not loaded");
            long atReload = Interlocked.Read(ref submitted);
            Assert.True(LoopbackCluster.WaitUntil(() => Interlocked.Read(ref submitted) > atReload + 2000, TimeSpan.FromSeconds(10)));
        }
        finally
        {
            stop.Set();
            traffic.Join(TimeSpan.FromSeconds(10));
        }

        Assert.Equal("2.0.0", owner.Catalog.ActivePlugin!.Version);
        Assert.Equal(Interlocked.Read(ref submitted), owner.Counters.EventsSubmitted);
        Assert.True(LoopbackCluster.WaitUntil(() => LoopbackCluster.Differences(owner, cluster.Members[1]) == 0, Converge));
        var classes = cluster.Members[1].SnapshotTable().Select(kv => owner.Catalog.NameOf(kv.Value.ServiceClass)).ToHashSet();
        Assert.Contains(ServiceClassNames.ShortLived, classes);        // classified by version 2
        Assert.Contains(ServiceClassNames.MissionCritical, classes);   // classified by version 1, still live
        Assert.Equal(0, owner.Catalog.Plugin!.Failures);
    }

    /// <summary>After a fallback, connections carry the built-in rules' classes (tcp/443 mission-critical, else default).</summary>
    private static void AssertBuiltInClasses(SyncEngine owner)
    {
        var fallback = new PortProtocolClassifier(NamedClasses.Rules);
        var sample = owner.SnapshotTable().TakeLast(200).ToList();
        Assert.NotEmpty(sample);
        foreach (var (key, entry) in sample)
        {
            Assert.Equal(fallback.Classify(key) ?? ServiceClassNames.Default, owner.Catalog.NameOf(entry.ServiceClass));
        }
    }
}
