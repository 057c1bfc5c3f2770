namespace ClusterSync.Core.Tests.Policy;

public class PolicyOptionsTests
{
    private static readonly ServiceClassOptions[] GoodClasses =
    [
        new() { Name = "critical", Policy = "full" },
        new() { Name = "short", Policy = "delayed", DelaySeconds = 3 },
        new() { Name = "default", Policy = "full" },
    ];

    private static List<string> Validate(PolicyOptions o) => o.Validate("policy").ToList();

    /// <summary>Asserts <paramref name="o"/> has exactly one error, at <paramref name="path"/>, naming <paramref name="naming"/> when given.</summary>
    private static void AssertSingleError(PolicyOptions o, string path, string? naming = null)
    {
        var error = Assert.Single(Validate(o));
        Assert.StartsWith(path + ":", error, StringComparison.Ordinal);
        if (naming is not null)
        {
            Assert.Contains(naming, error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Validate_Defaults_NoErrors()
    {
        Assert.Empty(Validate(new PolicyOptions()));
    }

    [Fact]
    public void Validate_GoodCustomPolicy_NoErrors()
    {
        var o = new PolicyOptions
        {
            Classes = GoodClasses,
            Rules = [new() { Protocol = "tcp", Ports = "80", Class = "short" }, new() { Protocol = "any", Class = "critical" }],
        };

        Assert.Empty(Validate(o));
    }

    [Theory]
    [InlineData("sometimes")]
    [InlineData("Full")]
    [InlineData("")]
    public void Validate_BadPolicyName_ReportsPathAndValue(string policy)
    {
        var o = new PolicyOptions { Classes = [GoodClasses[0], new() { Name = "x", Policy = policy }, GoodClasses[2]], Rules = [] };

        AssertSingleError(o, "policy.classes[1].policy", $"'{policy}'");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(86401)]
    [InlineData(double.NaN)]
    public void Validate_DelayedWithoutValidDelay_ReportsDelaySecondsPath(double delay)
    {
        var o = new PolicyOptions { Classes = [new() { Name = "default", Policy = "delayed", DelaySeconds = delay }], Rules = [] };

        AssertSingleError(o, "policy.classes[0].delaySeconds");
    }

    [Fact]
    public void Validate_DuplicateClass_ReportsPathAndName()
    {
        var o = new PolicyOptions { Classes = [.. GoodClasses, new() { Name = "short", Policy = "none" }], Rules = [] };

        AssertSingleError(o, "policy.classes[3].name", "duplicate class 'short'");
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Validate_MissingClassName_ReportsPath(string name)
    {
        var o = new PolicyOptions { Classes = [.. GoodClasses, new() { Name = name, Policy = "none" }], Rules = [] };

        AssertSingleError(o, "policy.classes[3].name");
    }

    [Fact]
    public void Validate_UnknownClassInRule_ReportsRulePath()
    {
        var o = new PolicyOptions
        {
            Classes = GoodClasses,
            Rules = [new() { Protocol = "tcp", Ports = "80", Class = "short" }, new() { Protocol = "udp", Ports = "53", Class = "nope" }],
        };

        AssertSingleError(o, "policy.rules[1].class", "'nope'");
    }

    [Theory]
    [InlineData("80-70")]
    [InlineData("abc")]
    [InlineData("")]
    public void Validate_BadPorts_ReportsRulePath(string ports)
    {
        var o = new PolicyOptions { Classes = GoodClasses, Rules = [new() { Protocol = "tcp", Ports = ports, Class = "short" }] };

        AssertSingleError(o, "policy.rules[0].ports", ports.Length > 0 ? $"'{ports}'" : null);
    }

    [Theory]
    [InlineData("tcpp")]
    [InlineData("300")]
    [InlineData("")]
    public void Validate_BadProtocol_ReportsRulePath(string protocol)
    {
        var o = new PolicyOptions { Classes = GoodClasses, Rules = [new() { Protocol = protocol, Class = "short" }] };

        AssertSingleError(o, "policy.rules[0].protocol", $"'{protocol}'");
    }

    [Fact]
    public void Validate_UnknownDefaultClass_ReportsDefaultClassPath()
    {
        var o = new PolicyOptions { DefaultClass = "missing", Classes = GoodClasses, Rules = [] };

        AssertSingleError(o, "policy.defaultClass", "'missing'");
    }

    [Fact]
    public void Validate_TooManyClasses_Reported()
    {
        var classes = Enumerable.Range(0, 251).Select(i => new ServiceClassOptions { Name = i == 0 ? "default" : $"c{i}" }).ToList();
        var o = new PolicyOptions { Classes = classes, Rules = [] };

        AssertSingleError(o, "policy.classes");
    }

    [Fact]
    public void Validate_SeveralProblems_ReportsEachWithItsPath()
    {
        var o = new PolicyOptions
        {
            DefaultClass = "gone",
            Classes = [new() { Name = "a", Policy = "bad" }, new() { Name = "a", Policy = "delayed" }],
            Rules = [new() { Protocol = "xyz", Ports = "9-1", Class = "zzz" }],
        };

        var errors = Validate(o);

        Assert.Equal(
            [
                "policy.classes[0].policy:",
                "policy.classes[1].name:",
                "policy.classes[1].delaySeconds:",
                "policy.defaultClass:",
                "policy.rules[0].protocol:",
                "policy.rules[0].ports:",
                "policy.rules[0].class:",
            ],
            errors.Select(e => e[..(e.IndexOf(':', StringComparison.Ordinal) + 1)]));
    }

    [Fact]
    public void Validate_CustomRootPath_UsedAsPrefix()
    {
        var o = new PolicyOptions { DefaultClass = "missing", Classes = GoodClasses, Rules = [] };

        Assert.StartsWith("node.sync.policy.defaultClass:", Assert.Single(o.Validate("node.sync.policy")), StringComparison.Ordinal);
    }
}
