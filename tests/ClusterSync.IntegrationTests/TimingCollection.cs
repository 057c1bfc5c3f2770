namespace ClusterSync.IntegrationTests;

/// <summary>
/// Tests that assert on timing (failover within the dead interval + 200 ms) run alone: xunit otherwise runs test
/// classes in parallel, and on a 2-core machine a neighbour replicating 100,000 changes delays heartbeats.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingCollection
{
    public const string Name = "timing-sensitive";
}
