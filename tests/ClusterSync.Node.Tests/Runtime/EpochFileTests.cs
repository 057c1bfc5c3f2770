namespace ClusterSync.Node.Tests.Runtime;

public sealed class EpochFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-epoch-").FullName;

    private string File1 => Path.Combine(_dir, "clustersync-member1.epoch");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Claim_FirstStart_TakesTheClockAndRecordsIt()
    {
        var (epoch, previous) = EpochFile.Claim(File1, 1, 1_800_000_000_000);

        Assert.Equal(1_800_000_000_000UL, epoch);
        Assert.Equal(0UL, previous);
        Assert.Equal(epoch, EpochFile.Load(File1, 1));
        Assert.Equal("clustersync-epoch v1 member=1 epoch=1800000000000\n", File.ReadAllText(File1));
        Assert.Single(Directory.GetFiles(_dir)); // no temporary file left behind
    }

    [Fact]
    public void Claim_RestartAfterTheClockSteppedBack_NewerThanThePreviousLife()
    {
        EpochFile.Claim(File1, 1, 1_800_000_000_000);

        var (epoch, previous) = EpochFile.Claim(File1, 1, 1_700_000_000_000); // the wall clock went back ~3 years

        Assert.Equal(1_800_000_000_000UL, previous);
        Assert.Equal(1_800_000_000_001UL, epoch);
        Assert.Equal(epoch, EpochFile.Load(File1, 1));
    }

    [Fact]
    public void Claim_RestartWithinTheSameMillisecond_NeverTheSameEpoch()
    {
        var first = EpochFile.Claim(File1, 1, 1_800_000_000_000).Epoch;
        var second = EpochFile.Claim(File1, 1, 1_800_000_000_000).Epoch;

        Assert.True(second > first);
    }

    [Fact]
    public void Claim_RestartWithTheClockAhead_TakesTheClock()
    {
        EpochFile.Claim(File1, 1, 1_800_000_000_000);

        Assert.Equal(1_800_000_050_000UL, EpochFile.Claim(File1, 1, 1_800_000_050_000).Epoch);
    }

    [Theory]
    [InlineData("")]
    [InlineData("clustersync-epoch v1 member=1 epoch=")]
    [InlineData("clustersync-epoch v1 member=1 epoch=0")]
    [InlineData("clustersync-epoch v1 member=1 epoch=-5")]
    [InlineData("clustersync-epoch v1 member=1 epoch=18446744073709551616")]
    [InlineData("clustersync-epoch v2 member=1 epoch=1800000000000")]
    [InlineData("clustersync-epoch v1 member=1 epoch=18000000")] // a real line cut short: still a number, but no newline
    [InlineData("clustersync-epoch v1 member=1 epoch=1800000000000\nclustersync-epoch v1 member=1 epoch=1\n")]
    [InlineData("\0\0\0\0")]
    public void Load_DamagedFile_ConfigurationErrorNamingTheFileAndWhatToDo(string content)
    {
        File.WriteAllText(File1, content);

        var ex = Assert.Throws<ConfigurationException>(() => EpochFile.Claim(File1, 1, 1_800_000_000_000));

        var message = Assert.Single(ex.Errors);
        Assert.StartsWith($"{File1}: damaged epoch file", message, StringComparison.Ordinal);
        Assert.Contains("move it aside", message, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllText(File1)); // left as found, for the operator
    }

    [Fact]
    public void Load_OversizeFile_Refused()
    {
        File.WriteAllBytes(File1, new byte[1 << 20]);

        var ex = Assert.Throws<ConfigurationException>(() => EpochFile.Load(File1, 1));

        Assert.Contains("1048576 bytes", Assert.Single(ex.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_AnotherMembersFile_Refused()
    {
        EpochFile.Save(File1, 2, 1_800_000_000_000);

        var ex = Assert.Throws<ConfigurationException>(() => EpochFile.Load(File1, 1));

        Assert.Contains("it is member 2's, this node is member 1", Assert.Single(ex.Errors), StringComparison.Ordinal);
    }

    [Fact]
    public void Save_DirectoryGone_NodeStartErrorNamingTheFile()
    {
        var path = Path.Combine(_dir, "gone", "clustersync-member1.epoch");

        var ex = Assert.Throws<NodeStartException>(() => EpochFile.Save(path, 1, 1_800_000_000_000));

        Assert.StartsWith($"{path}: cannot write the member's epoch file", ex.Message, StringComparison.Ordinal);
    }
}
