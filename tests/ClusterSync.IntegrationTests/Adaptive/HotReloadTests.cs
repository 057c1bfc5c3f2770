using System.Diagnostics;
using System.Text.Json;
using ClusterSync.Adaptive.Controller;
using ClusterSync.Connections;
using ClusterSync.Engine;
using ClusterSync.Policy;

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
        var modelPath = Path.Combine(_dir, "model.json");
        WriteModel(modelPath, "v1", 0.9, featureVersion: 1);
        var loader = new JsonModelLoader();
        using var controller = new AdaptiveController(
            new AdaptiveOptions { Enabled = true, Gain = 0.001, Checkpoint = TimeSpan.FromMilliseconds(200), ReloadPollInterval = TimeSpan.FromMilliseconds(50), FeedbackInterval = TimeSpan.FromMilliseconds(100) },
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
                        Thread.Sleep(1);
                        continue;
                    }

                    long now = sender.NowMs();
                    for (int i = 0; i < batch.Length; i++)
                    {
                        generator.Next(ref batch[i], now);
                    }

                    sender.Submit(batch);
                    submitted += batch.Length;
                    Thread.Sleep(0);
                }
            }
            finally
            {
                done.Set();
            }
        }) { IsBackground = true };
        traffic.Start();

        // Replace the model while the traffic runs: good, bad (wrong feature version), good, bad, good.
        (string Name, double Score, int Version)[] versions = [("v2", 0.3, 1), ("bad1", 0.5, 7), ("v3", 0.01, 1), ("bad2", 0.5, 9), ("v4", 0.7, 1)];
        long reloadsBefore = controller.GetStatus().ModelReloads;
        foreach (var (name, score, version) in versions)
        {
            Thread.Sleep(400);
            WriteModel(modelPath, name, score, version);
            var want = version == 1 ? name : null;
            Assert.True(LoopbackCluster.WaitUntil(() => want is null ? controller.GetStatus().LastReloadError?.Contains(name, StringComparison.Ordinal) == true : controller.ModelName == want,
                TimeSpan.FromSeconds(5)), $"model file {name} was not picked up (model {controller.ModelName}, last error {controller.GetStatus().LastReloadError})");
        }

        Assert.True(done.Wait(TimeSpan.FromSeconds(30)), "traffic did not finish");
        var status = controller.GetStatus();
        Assert.Equal("v4", status.Model);
        Assert.Equal(3, status.ModelReloads - reloadsBefore);
        Assert.Equal(2, status.ModelReloadsRefused);
        Assert.True(status.DecidedNow > 0 && status.DecidedDelayed > 0 && status.DecidedNever > 0, $"decisions now {status.DecidedNow} delayed {status.DecidedDelayed} never {status.DecidedNever}");
        Assert.True(submitted > 10_000, $"only {submitted} changes submitted");

        // Let the last checkpoints pass, then every announced connection must be at the receiver at its version.
        Thread.Sleep(500);
        Assert.True(LoopbackCluster.WaitUntil(() => Missing(sender, receiver) == 0, TimeSpan.FromSeconds(30)),
            $"{Missing(sender, receiver)} announced connections missing or stale at the receiver");
        Assert.True(sender.Counters.UpdatesSent > 0);
    }

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

    private static void WriteModel(string path, string name, double score, int featureVersion)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new { format = "test-constant-model", featureVersion, name, score }));
        File.Move(tmp, path, overwrite: true); // deploy by atomic rename
    }

    /// <summary>A model file format for this test only: a constant score, validated by its feature version.</summary>
    private sealed class JsonModelLoader : IModelLoader
    {
        public bool TryLoad(string path, out ILifetimePredictor? predictor, out string reason)
        {
            predictor = null;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(path));
                var root = doc.RootElement;
                int version = root.GetProperty("featureVersion").GetInt32();
                var name = root.GetProperty("name").GetString()!;
                if (version != 1)
                {
                    reason = $"{path}: featureVersion: expected 1, found {version} (model {name})";
                    return false;
                }

                predictor = new Constant(name, (float)root.GetProperty("score").GetDouble());
                reason = "";
                return true;
            }
            catch (Exception ex) when (ex is IOException or JsonException or KeyNotFoundException)
            {
                reason = $"{path}: {ex.Message}";
                return false;
            }
        }

        private sealed class Constant(string name, float score) : ILifetimePredictor
        {
            public string Name => name;

            public float ProbabilityLivesLongerThan(in ConnectionKey key, in ConnectionEntry entry, string serviceClass, double horizonSeconds) => score;
        }
    }
}
