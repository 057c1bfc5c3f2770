using System.IO.Compression;
using System.Text.Json.Nodes;

namespace ClusterSync.Adaptive.Tests.Controller;

/// <summary>The controller with the real ML.NET model shipped in <c>models/lifetime.zip</c>.</summary>
public sealed class ShippedModelTests : IDisposable
{
    private static readonly ServiceClassDefinition[] Classes =
    [
        new("mission-critical", SyncPolicy.Full),
        new("short-lived", SyncPolicy.Delayed(TimeSpan.FromSeconds(3))),
        new("non-sync", SyncPolicy.Never),
        new("default", SyncPolicy.Full),
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("cs-model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static string ShippedModel()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClusterSync.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"), "models", "lifetime.zip");
    }

    [Fact]
    public void TryLoadModel_ShippedModel_DecidesPerConnectionAndPriceMovesDecisions()
    {
        using var controller = new AdaptiveController(new AdaptiveOptions { Enabled = true, InitialPrice = 5 }, Classes);
        Assert.True(controller.TryLoadModel(new LifetimeModelLoader(), ShippedModel(), out var reason), reason);
        Assert.Equal("model", controller.GetStatus().Mode);

        // DNS-like, web and long-lived services from inside: the model tells them apart.
        long created = 1_700_000_000_000;
        var kinds = new List<SyncPolicyKind>();
        var scores = new List<float>();
        foreach (var (proto, port) in new (byte, ushort)[] { (17, 53), (6, 80), (6, 443), (6, 22), (17, 123), (6, 3389), (6, 445) })
        {
            var key = ConnectionKey.IPv4(0x0A000005, 0x08080808, 40000, port, proto);
            var d = controller.Decide(key, new ConnectionEntry { CreatedMs = created }, 3, SyncPolicy.Full);
            kinds.Add(d.Kind);
            Assert.InRange(d.Score, 0f, 1f);
            scores.Add(d.Score);
        }

        Assert.True(scores.Distinct().Count() > 1, "the model gave every service the same P(lives past the checkpoint)");

        // A much lower price buys exposure down: no connection is held longer than at the higher price.
        using var cheap = new AdaptiveController(new AdaptiveOptions { Enabled = true, InitialPrice = 0.01 }, Classes);
        Assert.True(cheap.TryLoadModel(new LifetimeModelLoader(), ShippedModel(), out _));
        var key80 = ConnectionKey.IPv4(0x0A000005, 0x08080808, 40000, 80, 6);
        var atHigh = controller.Decide(key80, new ConnectionEntry { CreatedMs = created }, 3, SyncPolicy.Full);
        var atLow = cheap.Decide(key80, new ConnectionEntry { CreatedMs = created }, 3, SyncPolicy.Full);
        Assert.True(Hold(atLow) <= Hold(atHigh), $"{atLow} vs {atHigh}");
    }

    [Fact]
    public void TryLoadModel_WrongFeatureVersion_RefusedAndShippedModelStays()
    {
        using var controller = new AdaptiveController(new AdaptiveOptions { Enabled = true }, Classes);
        var loader = new LifetimeModelLoader();
        Assert.True(controller.TryLoadModel(loader, ShippedModel(), out _));
        var name = controller.ModelName;

        var bad = Path.Combine(_dir, "bad.zip");
        File.Copy(ShippedModel(), bad);
        using (var zip = ZipFile.Open(bad, ZipArchiveMode.Update))
        {
            var entry = zip.Entries.Single(e => e.FullName.EndsWith(".json", StringComparison.Ordinal) && e.FullName.Contains("manifest", StringComparison.OrdinalIgnoreCase));
            JsonObject manifest;
            using (var s = entry.Open())
            {
                manifest = JsonNode.Parse(s)!.AsObject();
            }

            manifest["featureVersion"] = 99;
            var path = entry.FullName;
            entry.Delete();
            using var w = new StreamWriter(zip.CreateEntry(path).Open());
            w.Write(manifest.ToJsonString());
        }

        Assert.False(controller.TryLoadModel(loader, bad, out var reason));
        Assert.Contains("featureVersion", reason, StringComparison.Ordinal);
        Assert.Contains("bad.zip", reason, StringComparison.Ordinal);
        Assert.Equal(name, controller.ModelName);
        Assert.Equal(1, controller.GetStatus().ModelReloadsRefused);
    }

    private static double Hold(SyncDecision d) => d.Kind switch
    {
        SyncPolicyKind.Full => 0,
        SyncPolicyKind.None => double.PositiveInfinity,
        _ => d.DelayMs,
    };
}
