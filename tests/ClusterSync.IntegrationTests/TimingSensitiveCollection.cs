namespace ClusterSync.IntegrationTests;

/// <summary>
/// Tests that measure failover times (dead interval + a few hundred ms) or run several node processes at high rates:
/// on the CI's 2 cores they run alone, after the parallel tests, so one does not starve another's timers.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingSensitiveCollection
{
    public const string Name = "Timing-sensitive clusters";
}
