namespace ClusterSync.Core.Tests.Security;

public class ClusterKeyTests
{
    private const string Source = "/etc/clustersync/cluster.key";

    private static ConfigurationException ParseFails(string text)
        => Assert.Throws<ConfigurationException>(() => ClusterKey.Parse(text, Source));

    [Fact]
    public void ParseToFileText_RoundTrip_SameDerivedKeys()
    {
        var key = ClusterKey.Generate();

        var text = key.ToFileText();
        var parsed = ClusterKey.Parse(text, Source);

        Assert.StartsWith("#", text, StringComparison.Ordinal);
        Assert.Contains(ClusterKey.FileTag + " ", text, StringComparison.Ordinal);
        Assert.Equal(key.DeriveSenderKey(1, 1), parsed.DeriveSenderKey(1, 1));
        Assert.Equal(key.DeriveSenderKey(200, 99), parsed.DeriveSenderKey(200, 99));
    }

    [Fact]
    public void Parse_CrLfAndBlankLines_Accepted()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var text = $"\r\n# comment\r\n\r\n   {ClusterKey.FileTag} {Convert.ToBase64String(secret)}  \r\n";

        var parsed = ClusterKey.Parse(text, Source);

        Assert.Equal(new ClusterKey(secret).DeriveSenderKey(3, 4), parsed.DeriveSenderKey(3, 4));
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    [Fact]
    public void Load_FileWrittenByToFileText_RoundTrips()
    {
        var key = ClusterKey.Generate();
        var path = Path.Combine(Path.GetTempPath(), $"cs-key-{Guid.NewGuid():N}.key");
        try
        {
            key.WriteFile(path);

            var loaded = ClusterKey.Load(path);

            Assert.Equal(key.DeriveSenderKey(5, 6), loaded.DeriveSenderKey(5, 6));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    [Fact]
    public void Load_GroupOrOtherReadable_RefusedNamingModeAndFix()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cs-key-{Guid.NewGuid():N}.key");
        try
        {
            File.WriteAllText(path, ClusterKey.Generate().ToFileText());
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

            var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

            Assert.Contains(path, ex.Message);
            Assert.Contains("0644", ex.Message);
            Assert.Contains("chmod 600", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(100_000)]
    public void Load_NotExactlyTheKeygenSize_Refused(int delta)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cs-key-{Guid.NewGuid():N}.key");
        try
        {
            var text = ClusterKey.Generate().ToFileText();
            text = delta < 0 ? text[..^1] : text + new string('#', delta);
            File.WriteAllText(path, delta == 0 ? "" : text);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);

            var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

            Assert.Contains(path, ex.Message);
            Assert.Contains($"exactly {ClusterKey.FileSize} bytes", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_DevZero_RefusedAtOnce()
    {
        Assert.True(File.Exists("/dev/zero"));
        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load("/dev/zero"));
        Assert.Contains("/dev/zero", ex.Message);
        Assert.Contains("not a regular file", ex.Message);
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    [Fact]
    public void WriteFile_OverExistingWorldReadableFile_ReplacedWithMode0600()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cs-key-{Guid.NewGuid():N}.key");
        try
        {
            File.WriteAllText(path, "old");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            var key = ClusterKey.Generate();

            key.WriteFile(path);

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(key.DeriveSenderKey(1, 2), ClusterKey.Load(path).DeriveSenderKey(1, 2));
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.*.tmp")); // no temp file left behind
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_MissingFile_ErrorNamesPath()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cs-missing-{Guid.NewGuid():N}", "cluster.key");

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

        Assert.StartsWith(path + ":", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("clustersync-key v2 AAAA")]
    [InlineData("hello")]
    [InlineData("clustersync-key v1")]
    [InlineData("CLUSTERSYNC-KEY V1 AAAA")]
    public void Parse_BadTag_ErrorNamesSourceAndExpectedLine(string line)
    {
        var ex = ParseFails("# comment\n" + line + "\n");

        Assert.StartsWith(Source + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"expected a line '{ClusterKey.FileTag} <base64 of 32 bytes>'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"found '{line}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_LongBadLine_IsTruncatedInMessage()
    {
        var line = new string('x', 200);

        var ex = ParseFails(line);

        Assert.Contains("found '" + new string('x', 40) + "...'", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('x', 41), ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not*base64!")]
    [InlineData("AAA")]
    public void Parse_BadBase64_ErrorNamesSourceAndBase64(string payload)
    {
        var ex = ParseFails($"{ClusterKey.FileTag} {payload}\n");

        Assert.StartsWith(Source + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains("base64", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void Parse_WrongLength_ErrorNamesSourceAndLengths(int length)
    {
        var ex = ParseFails($"{ClusterKey.FileTag} {Convert.ToBase64String(new byte[length])}\n");

        Assert.StartsWith(Source + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains("32 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"found {length}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n")]
    [InlineData("# only a comment\n")]
    public void Parse_NoKeyLine_ErrorNamesSourceAndExpectedLine(string text)
    {
        var ex = ParseFails(text);

        Assert.StartsWith(Source + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no key line", ex.Message, StringComparison.Ordinal);
        Assert.Contains(ClusterKey.FileTag, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(31)]
    [InlineData(33)]
    public void Constructor_WrongLength_Throws(int length)
    {
        Assert.Throws<ArgumentException>(() => new ClusterKey(new byte[length]));
    }

    [Fact]
    public void DeriveSenderKey_SameInputs_SameKey()
    {
        var key = ClusterKey.Generate();

        var a = key.DeriveSenderKey(1, 1000);
        var b = key.DeriveSenderKey(1, 1000);

        Assert.Equal(32, a.Length);
        Assert.Equal(a, b);
    }

    [Fact]
    public void DeriveSenderKey_DifferentSender_DifferentKey()
    {
        var key = ClusterKey.Generate();

        Assert.NotEqual(key.DeriveSenderKey(1, 1000), key.DeriveSenderKey(2, 1000));
        Assert.NotEqual(key.DeriveSenderKey(1, 1000), key.DeriveSenderKey(256 + 1, 1000));
    }

    [Fact]
    public void DeriveSenderKey_DifferentEpoch_DifferentKey()
    {
        var key = ClusterKey.Generate();

        Assert.NotEqual(key.DeriveSenderKey(1, 1000), key.DeriveSenderKey(1, 1001));
        // Epochs that share their low 16 bits (the nonce part) still get different keys.
        Assert.NotEqual(key.DeriveSenderKey(1, 0x1_0000), key.DeriveSenderKey(1, 0x2_0000));
    }

    [Fact]
    public void DeriveSenderKey_DifferentSecret_DifferentKey()
    {
        Assert.NotEqual(ClusterKey.Generate().DeriveSenderKey(1, 1), ClusterKey.Generate().DeriveSenderKey(1, 1));
    }
}
