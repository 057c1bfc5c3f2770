using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

[assembly: ClusterSyncPlugin("test-classifier", "2.0.0", PluginKind.Classifier)]

namespace ClusterSync.TestPlugins;

/// <summary>Version 2 of the test classifier: every connection is <c>short-lived</c> (what the hot reload test looks for).</summary>
public sealed class TestClassifierFactory : IConnectionClassifierFactory
{
    public string Name => "test-classifier";

    public IConnectionClassifier Create(ClassifierContext context) => new TestClassifier();
}

internal sealed class TestClassifier : IConnectionClassifier
{
    public string Name => "test-classifier";

    public string? Classify(in ConnectionKey connection) => ServiceClassNames.ShortLived;
}
