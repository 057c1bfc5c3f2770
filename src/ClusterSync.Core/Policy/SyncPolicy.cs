namespace ClusterSync.Policy;

public enum SyncPolicyKind : byte
{
    /// <summary>Announce at once.</summary>
    Full,
    /// <summary>Announce only once the connection has lived <see cref="SyncPolicy.Delay"/>; nothing if it ends first.</summary>
    Delayed,
    /// <summary>Never announce (selective sync).</summary>
    None,
}

public readonly record struct SyncPolicy(SyncPolicyKind Kind, TimeSpan Delay)
{
    public static SyncPolicy Full => new(SyncPolicyKind.Full, TimeSpan.Zero);

    public static SyncPolicy Never => new(SyncPolicyKind.None, TimeSpan.Zero);

    public static SyncPolicy Delayed(TimeSpan delay) => new(SyncPolicyKind.Delayed, delay);

    public override string ToString() => Kind switch
    {
        SyncPolicyKind.Full => "full",
        SyncPolicyKind.None => "none",
        _ => $"delayed({Delay.TotalSeconds:0.###}s)",
    };
}

/// <summary>A service class and its sync policy.</summary>
public sealed record ServiceClassDefinition(string Name, SyncPolicy Policy);
