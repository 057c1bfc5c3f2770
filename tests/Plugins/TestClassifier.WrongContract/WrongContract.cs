using ClusterSync.Classification;
using ClusterSync.Connections;
using ClusterSync.Plugins;

// Claims to be built for a contract version this host does not implement: the host must refuse it with that reason.
[assembly: ClusterSyncPlugin("wrong-contract", "0.9.0", PluginKind.Classifier, contractVersion: 99)]

namespace ClusterSync.TestPlugins;

public sealed class WrongContractFactory : IConnectionClassifierFactory
{
    public string Name => "wrong-contract";

    public IConnectionClassifier Create(ClassifierContext context) => new WrongContractClassifier();
}

internal sealed class WrongContractClassifier : IConnectionClassifier
{
    public string Name => "wrong-contract";

    public string? Classify(in ConnectionKey connection) => null;
}
