using ClusterSync.Connections;

namespace ClusterSync.Classification;

/// <summary>
/// Maps a connection to a service class by name. Called once per new connection, on the data-plane
/// thread: it must be fast and must not block. A named policy: the node picks a classifier by <see cref="Name"/>.
/// </summary>
public interface IConnectionClassifier
{
    /// <summary>The classifier's configuration name.</summary>
    string Name { get; }

    /// <summary>The service class of <paramref name="connection"/>, or null for the node's default class.</summary>
    string? Classify(in ConnectionKey connection);
}

/// <summary>Well-known service class names.</summary>
public static class ServiceClassNames
{
    /// <summary>Synchronized at once, never skipped.</summary>
    public const string MissionCritical = "mission-critical";
    /// <summary>Short-lived: announced only if it lives past a delay.</summary>
    public const string ShortLived = "short-lived";
    /// <summary>Never synchronized.</summary>
    public const string NonSync = "non-sync";
    /// <summary>What an unclassified connection gets.</summary>
    public const string Default = "default";
}
