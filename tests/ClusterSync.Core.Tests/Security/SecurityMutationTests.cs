namespace ClusterSync.Core.Tests.Security;

/// <summary>
/// Tests written against the mutation-testing survivors of Security (bench/mutation.sh security): what each key-file
/// error says, and that a failed write leaves nothing behind. (Key derivation, nonce and sealing are pinned by
/// <see cref="KnownAnswerTests"/>.)
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class SecurityMutationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-keytest-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string KeyFile(string text)
    {
        var path = Path.Combine(_dir, "cluster.key");
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    [Fact]
    public void Constructor_WrongLength_MessageSaysThirtyTwoBytes()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ClusterKey(new byte[16]));

        Assert.Contains("exactly 32 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Equal("secret", ex.ParamName);
    }

    [Fact]
    public void Load_MissingFile_SaysItDoesNotExistAndHowToMakeOne()
    {
        var path = Path.Combine(_dir, "absent.key");

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

        Assert.Equal($"{path}: the cluster key file does not exist (make one with 'clustersync keygen --out {path}')", ex.Message);
    }

    [Fact]
    public void Load_WrongNonEmptySize_NamesTheSizeFound()
    {
        var text = ClusterKey.Generate().ToFileText() + "##";
        var path = KeyFile(text);

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

        Assert.EndsWith($"found {ClusterKey.FileSize + 2} bytes", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("empty", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_EmptyFile_SaysEmptyOrNotARegularFile()
    {
        var path = KeyFile("");

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

        Assert.EndsWith("found an empty file or not a regular file (a device or a pipe)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_GroupReadable_RefusedWithItsOwnMessageNotAsAReadError()
    {
        var path = KeyFile(ClusterKey.Generate().ToFileText());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

        Assert.StartsWith($"{path}: the cluster key file is accessible by group or others (mode 0640)", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("cannot read", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FileLockedExclusivelyByAnotherOpen_ConfigurationErrorNamingTheFile()
    {
        var key = ClusterKey.Generate();
        var path = Path.Combine(_dir, "cluster.key");
        key.WriteFile(path);

        // .NET on Unix backs FileShare.None with an exclusive flock: the loader's shared open fails with an IOException
        // (also as root), which must come out as a configuration error, not as a raw exception.
        using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Load(path));

            Assert.StartsWith($"{path}: cannot read the cluster key file: ", ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(key.DeriveSenderKey(1, 2), ClusterKey.Load(path).DeriveSenderKey(1, 2));
    }

    [Fact]
    public void WriteFile_MoveFails_TemporaryFileRemoved()
    {
        var target = Path.Combine(_dir, "a-directory");
        Directory.CreateDirectory(target);

        Assert.ThrowsAny<Exception>(() => ClusterKey.Generate().WriteFile(target));

        Assert.Equal([target], Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Parse_BadLineOfExactly40Characters_QuotedWhole()
    {
        var line = new string('y', 40);

        var ex = Assert.Throws<ConfigurationException>(() => ClusterKey.Parse(line, "k"));

        Assert.EndsWith($"found '{line}'", ex.Message, StringComparison.Ordinal);
    }
}
