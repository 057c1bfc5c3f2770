using System.IO.Compression;

namespace ClusterSync.IntegrationTests.Adaptive;

/// <summary>
/// Adaptive mode between two real engines on loopback UDP: the model file is replaced (good and bad versions) while
/// generated traffic runs; every connection the sender announced must arrive at the receiver at its latest version.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class HotReloadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-hotreload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly PolicyOptions Policy = new()
    {
        Classes =
        [
            new ServiceClassOptions { Name = "mission-critical", Policy = "full" },
            new ServiceClassOptions { Name = "short-lived", Policy = "delayed", DelaySeconds = 0.3 },
            new ServiceClassOptions { Name = "non-sync", Policy = "none" },
            new ServiceClassOptions { Name = "default", Policy = "full" },
        ],
        DefaultClass = "default",
        Rules = new PolicyOptions().Rules,
    };

    [Fact]
    public void ModelWatcher_FileReplacedUnderTraffic_NoAnnouncedUpdateLost()
    {
        using var cluster = new LoopbackCluster(2, configure: o => o with { Policy = Policy, TableCapacity = 1 << 17 });
        var sender = cluster.Members[0];
        var receiver = cluster.Members[1];
        var modelPath = Path.Combine(_dir, "lifetime.zip");
        WriteModel(modelPath, "v1", featureVersion: 1);
        var loader = new LifetimeModelLoader();
        using var controller = new AdaptiveController(
            new AdaptiveOptions { Enabled = true, InitialPrice = 2, Checkpoint = TimeSpan.FromMilliseconds(200), ReloadPollInterval = TimeSpan.FromMilliseconds(50), FeedbackInterval = TimeSpan.FromMilliseconds(100) },
            sender.Catalog.Classes);
        Assert.True(controller.TryLoadModel(loader, modelPath, out var first), first);
        using var watcher = new ModelWatcher(controller, loader, modelPath);
        sender.Decider = controller;
        sender.OutcomeSink = controller;

        // Traffic on its own thread, bounded in count and time.
        long submitted = 0;
        var done = new ManualResetEventSlim();
        var traffic = new Thread(() =>
        {
            try
            {
                var generator = new Workload.ChangeGenerator(11, 20_000);
                var batch = new ConnectionEvent[64];
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed < TimeSpan.FromSeconds(4) && submitted < 2_000_000)
                {
                    if (sender.PendingCount > 16_384)
                    {
                        SpinWait.SpinUntil(() => sender.PendingCount <= 16_384, TimeSpan.FromMilliseconds(100)); // backpressure: the sender drains
                        continue;
                    }

                    LoopbackCluster.SubmitNext(sender, generator, batch);
                    submitted += batch.Length;
                    Thread.Yield();
                }
            }
            finally
            {
                done.Set();
            }
        }) { IsBackground = true };
        traffic.Start();

        // Replace the model while the traffic runs: good, bad (wrong feature version), good, bad, good.
        (string Name, int Version)[] versions = [("v2", 1), ("bad1", 7), ("v3", 1), ("bad2", 9), ("v4", 1)];
        long reloadsBefore = controller.GetStatus().ModelReloads;
        foreach (var (name, version) in versions)
        {
            // Let the model in place decide live traffic before it is replaced (a condition, not a pause).
            long decided = Decided(controller.GetStatus());
            Assert.True(LoopbackCluster.WaitUntil(() => Decided(controller.GetStatus()) >= decided + 100 || done.IsSet, TimeSpan.FromSeconds(10)),
                "the model in place decided no traffic");
            WriteModel(modelPath, name, version);
            var want = version == 1 ? name : null;
            Assert.True(LoopbackCluster.WaitUntil(() => want is null
                    ? controller.GetStatus().LastReloadError?.Contains($"feature version {version},", StringComparison.Ordinal) == true
                    : controller.ModelName == want,
                TimeSpan.FromSeconds(5)), $"model file {name} was not picked up (model {controller.ModelName}, last error {controller.GetStatus().LastReloadError})");
        }

        Assert.True(done.Wait(TimeSpan.FromSeconds(30)), "traffic did not finish");
        var status = controller.GetStatus();
        Assert.Equal("v4", status.Model);
        Assert.Equal(3, status.ModelReloads - reloadsBefore);
        Assert.Equal(2, status.ModelReloadsRefused);
        Assert.True(status.DecidedNow + status.DecidedDelayed + status.DecidedNever > 1000, $"decisions now {status.DecidedNow} delayed {status.DecidedDelayed} never {status.DecidedNever}");
        Assert.True(status.DecidedNeverSkip > 0);
        Assert.True(submitted > 10_000, $"only {submitted} changes submitted");

        // Let the last checkpoints pass (a connection is revised at created + 200 ms, one held again for half a
        // checkpoint more): wait until nothing created before the traffic stopped is still before its checkpoint,
        // then every announced connection must be at the receiver at its version.
        long lastCreated = sender.SnapshotTable().Max(p => p.Value.CreatedMs);
        Assert.True(LoopbackCluster.WaitUntil(() => sender.NextDelayedDueMs > lastCreated + 400, TimeSpan.FromSeconds(30)),
            $"connections created by {lastCreated} are still before their checkpoint (next due {sender.NextDelayedDueMs})");
        Assert.True(LoopbackCluster.WaitUntil(() => Missing(sender, receiver) == 0, TimeSpan.FromSeconds(30)),
            $"{Missing(sender, receiver)} announced connections missing or stale at the receiver");
        Assert.True(sender.Counters.UpdatesSent > 0);
    }

    private static long Decided(AdaptiveStatus s) => s.DecidedNow + s.DecidedDelayed + s.DecidedNever;

    /// <summary>Announced live connections of the sender that the receiver lacks or holds at another version.</summary>
    private static int Missing(SyncEngine sender, SyncEngine receiver)
    {
        if (sender.PendingCount != 0)
        {
            return int.MaxValue;
        }

        int missing = 0;
        foreach (var (key, entry) in sender.SnapshotTable())
        {
            if ((entry.Status & ConnectionStatus.Announced) != 0
                && (!receiver.TryGetEntry(key, out var got) || got.Version != entry.Version))
            {
                missing++;
            }
        }

        return missing;
    }

    /// <summary>
    /// Deploys a copy of the shipped ML.NET model under another name (or with another feature version, which the loader
    /// must refuse): written next to the target, then renamed over it.
    /// </summary>
    private static void WriteModel(string path, string name, int featureVersion)
    {
        var tmp = path + ".tmp";
        File.Copy(ShippedModel(), tmp, overwrite: true);
        using (var zip = ZipFile.Open(tmp, ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("clustersync/manifest.json")!;
            JsonObject manifest;
            using (var s = entry.Open())
            {
                manifest = JsonNode.Parse(s)!.AsObject();
            }

            manifest["name"] = name;
            manifest["featureVersion"] = featureVersion;
            entry.Delete();
            using var w = new StreamWriter(zip.CreateEntry("clustersync/manifest.json").Open());
            w.Write(manifest.ToJsonString());
        }

        File.Move(tmp, path, overwrite: true);
    }

    private static string ShippedModel()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir!.FullName, "models", "lifetime.zip");
    }
}
