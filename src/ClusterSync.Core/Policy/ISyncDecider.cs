using ClusterSync.Connections;

namespace ClusterSync.Policy;

/// <summary>
/// What a <see cref="ISyncDecider"/> says for one connection: announce now, after <see cref="DelayMs"/>, or never;
/// <see cref="Score"/> is the model's score behind it (NaN when there was none), kept for telemetry and feedback.
/// </summary>
public readonly record struct SyncDecision(SyncPolicyKind Kind, int DelayMs, float Score)
{
    public static SyncDecision Now(float score = float.NaN) => new(SyncPolicyKind.Full, 0, score);

    public static SyncDecision Never(float score = float.NaN) => new(SyncPolicyKind.None, 0, score);

    public static SyncDecision After(int delayMs, float score = float.NaN)
        => delayMs <= 0 ? Now(score) : new(SyncPolicyKind.Delayed, delayMs, score);

    public static SyncDecision From(SyncPolicy policy) => policy.Kind switch
    {
        SyncPolicyKind.Full => Now(),
        SyncPolicyKind.None => Never(),
        _ => After((int)Math.Min(int.MaxValue, policy.Delay.TotalMilliseconds)),
    };
}

/// <summary>
/// Decides per connection when (and whether) to announce it — the adaptive mode's hook into the policy gate. The
/// engine calls it on the data-plane thread under its table lock: implementations must not block or allocate and
/// should take well under 2 µs. Without a decider the engine uses the class policy alone.
/// </summary>
public interface ISyncDecider
{
    /// <summary>A new connection of <paramref name="serviceClass"/>, whose configured policy is <paramref name="classPolicy"/>.</summary>
    SyncDecision Decide(in ConnectionKey key, in ConnectionEntry entry, byte serviceClass, SyncPolicy classPolicy);

    /// <summary>
    /// The delay checkpoint: the connection is still alive after <paramref name="ageMs"/>; decide again with what is
    /// known now (its state, its counters when the data plane reports them). On the control tick, under the table lock.
    /// </summary>
    SyncDecision Revise(in ConnectionKey key, in ConnectionEntry entry, in ConnectionCounters counters, bool hasCounters, byte serviceClass, long ageMs);
}

/// <summary>How a connection's life ended, as the engine saw it.</summary>
public enum ConnectionEndReason : byte
{
    /// <summary>The data plane reported its end.</summary>
    Destroyed = 1,
    /// <summary>Its idle timeout passed (swept).</summary>
    Expired = 2,
}

/// <summary>
/// One connection's life, reported when it ends: what was decided (delay, score), whether it was announced, the
/// records spent on it, its final state and counters. <see cref="SyncDelayMs"/> is −1 for "never".
/// </summary>
public readonly record struct ConnectionOutcome(
    ConnectionKey Key,
    byte ServiceClass,
    long CreatedMs,
    long EndedMs,
    ConnectionEndReason Reason,
    bool Synced,
    int SyncDelayMs,
    float Score,
    int Messages,
    ProtocolState FinalState,
    ConnectionCounters Counters,
    bool HasCounters)
{
    public long LifetimeMs => Math.Max(0, EndedMs - CreatedMs);

    /// <summary>Milliseconds the connection was alive but not replicated: min(lifetime, delay), the lifetime when never.</summary>
    public long ExposureMs => SyncDelayMs < 0 ? LifetimeMs : Math.Min(LifetimeMs, SyncDelayMs);
}

/// <summary>
/// Receives every owned connection's outcome (telemetry capture, the adaptive feedback loop). Called under the
/// engine's table lock on the data-plane or control thread: implementations only hand the record off (a bounded
/// queue), never block.
/// </summary>
public interface IConnectionOutcomeSink
{
    void OnEnded(in ConnectionOutcome outcome);
}
