using System.Text.Json;
using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin("test-classifier", "1.0.0", PluginKind.Classifier)]

namespace ClusterSync.TestPlugins;

/// <summary>
/// Version 1 of the test classifier. Settings: <c>mode</c> — <c>ok</c> (every connection gets <c>class</c>), <c>throw</c>
/// (every call throws), <c>unknown</c> (answers a class no node configures), <c>hang</c> (a call for destination port
/// <c>hangPort</c> sleeps <c>hangMs</c>, the others answer <c>class</c>).
/// </summary>
public sealed class TestClassifierFactory : IConnectionClassifierFactory
{
    public string Name => "test-classifier";

    public IConnectionClassifier Create(ClassifierContext context)
    {
        var s = context.Settings ?? JsonDocument.Parse("{}").RootElement;
        string Get(string name, string fallback) => s.TryGetProperty(name, out var v) ? v.ToString() : fallback;
        return new TestClassifier(Get("mode", "ok"), Get("class", ServiceClassNames.MissionCritical),
            int.Parse(Get("hangPort", "9999"), System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(Get("hangMs", "3000"), System.Globalization.CultureInfo.InvariantCulture));
    }
}

internal sealed class TestClassifier(string mode, string cls, int hangPort, int hangMs) : IConnectionClassifier
{
    public string Name => "test-classifier";

    public string? Classify(in ConnectionKey connection)
    {
        switch (mode)
        {
            case "throw":
                throw new InvalidOperationException("test classifier v1 throws on purpose");
            case "unknown":
                return "no-such-class";
            case "hang" when connection.DestinationPort == hangPort:
                Thread.Sleep(hangMs);
                return cls;
            default:
                return cls;
        }
    }
}
