namespace ClusterSync.EndToEndTests.Netns;

/// <summary>A fact that builds network namespaces: skipped with the reason when it cannot here (<see cref="Host.SkipReason"/>).</summary>
internal sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (Host.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A <see cref="NetnsFactAttribute"/> that also needs <c>arping</c> and <c>ping</c> (the virtual address tests).</summary>
internal sealed class VirtualAddressFactAttribute : FactAttribute
{
    public VirtualAddressFactAttribute()
    {
        if (Host.SkipReason is { } reason)
        {
            Skip = reason;
        }
        else if (!Host.OnPath("arping") || !Host.OnPath("ping"))
        {
            Skip = "the arping or ping command is missing (apt-get install iputils-arping iputils-ping)";
        }
    }
}

/// <summary>A <see cref="NetnsFactAttribute"/> that also needs keepalived (the keepalived integration test).</summary>
internal sealed class KeepalivedFactAttribute : FactAttribute
{
    public KeepalivedFactAttribute()
    {
        if (Host.SkipReason is { } reason)
        {
            Skip = reason;
        }
        else if (!Host.OnPath("keepalived"))
        {
            Skip = "the keepalived command is missing (apt-get install keepalived)";
        }
    }
}

/// <summary>
/// The end-to-end tests run one at a time: each builds five namespaces, runs hundreds of connections and up to two
/// node processes, and measures how connections fare across a failover on a 2-core CI machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EndToEndCollection
{
    public const string Name = "End to end (network namespaces)";
}
