namespace ClusterSync.Core.Tests.Policy;

public class ServiceClassCatalogTests
{
    private sealed class FuncClassifier(Func<ConnectionKey, string?> classify) : IConnectionClassifier
    {
        public string Name => "test";

        public string? Classify(in ConnectionKey connection) => classify(connection);
    }

    private static readonly ConnectionKey Key = ConnectionKey.IPv4(0x0A00_0001, 0x0A00_0002, 40000, 80, 6);

    private static PolicyOptions Options() => new()
    {
        DefaultClass = "default",
        Classes =
        [
            new() { Name = "critical", Policy = "full" },
            new() { Name = "short", Policy = "delayed", DelaySeconds = 2.5 },
            new() { Name = "never", Policy = "none" },
            new() { Name = "default", Policy = "full" },
        ],
        Rules = [new() { Protocol = "tcp", Ports = "80", Class = "short" }, new() { Protocol = "udp", Class = "never" }],
    };

    [Fact]
    public void Constructor_NumbersClassesInConfigurationOrder()
    {
        var catalog = new ServiceClassCatalog(Options());

        Assert.Equal(3, catalog.DefaultId);
        Assert.True(catalog.TryGetId("short", out var id));
        Assert.Equal(1, id);
        Assert.Equal("never", catalog.NameOf(2));
        Assert.Equal("?", catalog.NameOf(200));
        Assert.False(catalog.TryGetId("nope", out _));
    }

    [Fact]
    public void PolicyOf_EachClass_MatchesConfiguration()
    {
        var catalog = new ServiceClassCatalog(Options());

        Assert.Equal(SyncPolicy.Full, catalog.PolicyOf(0));
        Assert.Equal(SyncPolicy.Delayed(TimeSpan.FromSeconds(2.5)), catalog.PolicyOf(1));
        Assert.Equal(SyncPolicy.Never, catalog.PolicyOf(2));
        Assert.Equal(catalog.PolicyOf(catalog.DefaultId), catalog.PolicyOf(250));
    }

    [Fact]
    public void Classify_BuiltInClassifier_UsesRules()
    {
        var catalog = new ServiceClassCatalog(Options());

        Assert.Equal("port-protocol", catalog.ClassifierName);
        Assert.Equal(1, catalog.Classify(Key));
        Assert.Equal(2, catalog.Classify(ConnectionKey.IPv4(1, 2, 3, 4, 17)));
        Assert.Equal(catalog.DefaultId, catalog.Classify(ConnectionKey.IPv4(1, 2, 3, 4, 6)));
    }

    [Theory]
    [InlineData("throws", 2, 0)]        // every call that throws is a failure
    [InlineData("no-such-class", 0, 2)] // an unknown name is counted, not a failure
    [InlineData(null, 0, 0)]            // no answer: the default class, nothing counted
    public void Classify_ClassifierThrowsOrGivesNoKnownClass_DefaultClassAndOnlyItsCauseCounted(string? answer, int failures, int unknown)
    {
        var catalog = new ServiceClassCatalog(Options(), new FuncClassifier(_ => answer == "throws" ? throw new InvalidOperationException("boom") : answer));

        Assert.Equal(catalog.DefaultId, catalog.Classify(Key));
        Assert.Equal(catalog.DefaultId, catalog.Classify(Key));
        Assert.Equal(failures, catalog.ClassifierFailures);
        Assert.Equal(unknown, catalog.UnknownClassCount);
    }

    [Fact]
    public void Classify_ClassifierReturnsKnownName_ThatClass()
    {
        var catalog = new ServiceClassCatalog(Options(), new FuncClassifier(_ => "critical"));

        Assert.Equal(0, catalog.Classify(Key));
        Assert.Equal("test", catalog.ClassifierName);
    }

    [Fact]
    public void Constructor_InvalidOptions_ThrowsWithEveryError()
    {
        var bad = Options() with { DefaultClass = "missing", Rules = [new() { Protocol = "bogus", Class = "short" }] };

        var ex = Assert.Throws<ConfigurationException>(() => new ServiceClassCatalog(bad));

        Assert.Equal(2, ex.Errors.Count);
        Assert.Contains(ex.Errors, e => e.StartsWith("policy.defaultClass:", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.StartsWith("policy.rules[0].protocol:", StringComparison.Ordinal));
    }
}
