using System.Text.Json;

namespace ClusterSync.Classification;

/// <summary>
/// Creates a classifier from the node's configuration. The entry point of a classifier or protocol plugin: the
/// host creates the factory with its public parameterless constructor and selects it by <see cref="Name"/>.
/// </summary>
public interface IConnectionClassifierFactory
{
    /// <summary>The classifier's configuration name (<c>policy.classifier</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Creates the classifier. Throwing here refuses the plugin: the node's configuration is refused (exit 2, naming the
    /// plugin's settings); on a hot reload the version in use stays.
    /// </summary>
    IConnectionClassifier Create(ClassifierContext context);
}

/// <summary>What a classifier is created with.</summary>
/// <param name="ServiceClasses">The service class names the node has configured; any other name a classifier returns is counted as a failure.</param>
/// <param name="DefaultClass">The class of a connection the classifier returns null for.</param>
/// <param name="Rules">The node's port/protocol rules (<c>policy.rules</c>), in order.</param>
/// <param name="Settings">The plugin's own settings (<c>plugins.settings.NAME</c> in the node configuration), or null.</param>
public sealed record ClassifierContext(
    IReadOnlyList<string> ServiceClasses,
    string DefaultClass,
    IReadOnlyList<ClassRule> Rules,
    JsonElement? Settings);

/// <summary>One port/protocol rule: connections of <paramref name="Protocol"/> to one of <paramref name="Ports"/> belong to <paramref name="Class"/>.</summary>
/// <param name="Protocol"><c>tcp</c>, <c>udp</c>, <c>icmp</c>, <c>icmpv6</c>, <c>sctp</c>, <c>any</c> or a protocol number.</param>
/// <param name="Ports">Destination ports like <c>80,443,8000-8080</c>; null matches every port.</param>
/// <param name="Class">The service class name.</param>
public sealed record ClassRule(string Protocol, string? Ports, string Class);
