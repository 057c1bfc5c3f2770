namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A restarted member never reuses an epoch its peers saw, even when the wall clock stepped back: <c>clustersync node</c>
/// keeps its last epoch in <c>node.stateDirectory</c> and starts newer than it; a damaged epoch file stops it at start
/// (exit 2, the path and what to do), never silently.
/// </summary>
[Collection(TimingSensitiveCollection.Name)]
public sealed class EpochPersistenceProcessTests(ITestOutputHelper log) : IAsyncLifetime
{
    private readonly NodeCluster _node = new(1, log);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _node.DisposeAsync();

    /// <summary>No <c>node.stateDirectory</c>: the file sits next to the configuration.</summary>
    private string EpochFile => Path.Combine(_node.Directory, "clustersync-member1.epoch");

    private string Config() => _node.Write(1, NodeCluster.NoDataPlane);

    [Fact]
    public async Task Node_RestartedWithTheClockBehindItsLastEpoch_StartsNewerThanItAndRecordsIt()
    {
        Config();
        var first = _node.Start(1);
        ulong firstEpoch = await EpochAsync(first);
        Assert.Equal(Line(firstEpoch), File.ReadAllText(EpochFile));
        first.Kill();

        // As if the clock had been a day ahead during the last life and stepped back since: the recorded epoch is newer
        // than the clock, so the new life must take the next one (its peers would drop an older epoch as a replay, and
        // an equal one would repeat the previous life's nonces).
        ulong recorded = (ulong)DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds();
        File.WriteAllText(EpochFile, Line(recorded));
        var second = _node.Start(1);

        ulong epoch = await EpochAsync(second);

        Assert.Equal(recorded + 1, epoch);
        Assert.Equal(Line(recorded + 1), File.ReadAllText(EpochFile));
        Assert.DoesNotContain(Directory.GetFiles(_node.Directory), f => f.EndsWith(".tmp", StringComparison.Ordinal)); // renamed into place
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("truncated")]
    [InlineData("another member's")]
    public async Task Node_DamagedEpochFile_Exit2NamingTheFileAndWhatToDo(string damage)
    {
        var config = Config();
        File.WriteAllText(EpochFile, damage switch
        {
            "garbage" => "\u0001\u0002 not an epoch",
            "truncated" => Line(1_800_000_000_000)[..30],
            _ => "clustersync-epoch v1 member=2 epoch=1800000000000\n",
        });
        string before = File.ReadAllText(EpochFile);

        var node = await _node.RunAsync(TimeSpan.FromSeconds(60), "node", "--config", config);

        node.AssertExit2($"clustersync: {EpochFile}: damaged epoch file", "move it aside");
        Assert.Equal(before, File.ReadAllText(EpochFile)); // left for the operator to look at
    }

    private static string Line(ulong epoch) => string.Create(CultureInfo.InvariantCulture, $"clustersync-epoch v1 member=1 epoch={epoch}\n");

    /// <summary>The node's epoch, from its log line "Member 1 started: epoch N".</summary>
    private async Task<ulong> EpochAsync(CliProcess node)
    {
        ulong epoch = 0;
        await _node.WaitUntilAsync(
            () =>
            {
                var m = System.Text.RegularExpressions.Regex.Match(node.Output, @"Member 1 started: epoch (\d+)");
                return m.Success && ulong.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out epoch);
            },
            "the node's epoch in its log",
            TimeSpan.FromSeconds(60));
        return epoch;
    }
}
