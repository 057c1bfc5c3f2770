using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ClusterSync.Security;

/// <summary>
/// The cluster key: 32 random bytes every member shares. Per-sender, per-epoch AES-256-GCM keys are derived
/// from it with HKDF-SHA256, so no two members (and no two lives of one member) ever share a key.
/// </summary>
public sealed class ClusterKey
{
    public const string FileTag = "clustersync-key v1";
    private static readonly byte[] s_salt = Encoding.ASCII.GetBytes("ClusterSync delta sync v1");
    private readonly byte[] _secret;

    public ClusterKey(ReadOnlySpan<byte> secret)
    {
        if (secret.Length != 32)
        {
            throw new ArgumentException("A cluster key is exactly 32 bytes.", nameof(secret));
        }

        _secret = secret.ToArray();
    }

    public static ClusterKey Generate() => new(RandomNumberGenerator.GetBytes(32));

    /// <summary>The key file text: a comment line and <c>clustersync-key v1 BASE64</c>.</summary>
    public string ToFileText()
        => $"# ClusterSync cluster key. Keep it secret: every member of the cluster needs this same file.\n{FileTag} {Convert.ToBase64String(_secret)}\n";

    /// <summary>The size of a key file as <see cref="ToFileText"/> (and so <c>clustersync keygen</c>) writes it.</summary>
    public static readonly int FileSize = Encoding.UTF8.GetByteCount(new ClusterKey(new byte[32]).ToFileText());

    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// Reads a key file; a bad file throws <see cref="ConfigurationException"/> naming the file and what was expected. The
    /// file must be a regular file of exactly <see cref="FileSize"/> bytes (as keygen writes it: a device such as
    /// <c>/dev/zero</c>, a pipe or a huge file is refused before anything is read) and, like ssh's private keys, not
    /// accessible by group or others (mode 0600 or stricter).
    /// </summary>
    public static ClusterKey Load(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw ConfigurationErrors.InFile(path, $"the cluster key file does not exist (make one with 'clustersync keygen --out {path}')");
            }

            if (info.Length != FileSize)
            {
                throw ConfigurationErrors.InFile(path,
                    $"expected a regular file of exactly {FileSize} bytes as 'clustersync keygen' writes it, found {(info.Length == 0 ? "an empty file or not a regular file (a device or a pipe)" : $"{info.Length} bytes")}");
            }

            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(path);
                if ((mode & GroupOrOther) != 0)
                {
                    throw ConfigurationErrors.InFile(path,
                        $"the cluster key file is accessible by group or others (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}); it must be readable by its owner only: chmod 600 {path}");
                }
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            if (!stream.CanSeek)
            {
                throw ConfigurationErrors.InFile(path, "expected a regular file holding the cluster key, found a device or a pipe");
            }

            var bytes = new byte[FileSize + 1];
            int read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (read != FileSize)
            {
                throw ConfigurationErrors.InFile(path, $"expected exactly {FileSize} bytes, read {read} (the file changed while it was read?)");
            }

            return Parse(Encoding.UTF8.GetString(bytes, 0, read), path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw ConfigurationErrors.InFile(path, $"cannot read the cluster key file: {ex.Message}");
        }
    }

    /// <summary>
    /// Writes a key file readable by its owner only (0600), also when it replaces an existing file whatever that file's
    /// mode was: written to a new 0600 file beside it, then moved over it, so the key is never readable by others.
    /// </summary>
    public void WriteFile(string path)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(Encoding.UTF8.GetBytes(ToFileText()));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp); // nothing there after a successful move
        }
    }

    public static ClusterKey Parse(string text, string source)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (!line.StartsWith(FileTag + " ", StringComparison.Ordinal))
            {
                throw ConfigurationErrors.InFile(source, $"expected a line '{FileTag} <base64 of 32 bytes>' (made by 'clustersync keygen'), found '{Truncate(line)}'");
            }

            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(line[(FileTag.Length + 1)..].Trim());
            }
            catch (FormatException)
            {
                throw ConfigurationErrors.InFile(source, "the key is not valid base64");
            }

            if (bytes.Length != 32)
            {
                throw ConfigurationErrors.InFile(source, $"the key must be 32 bytes, found {bytes.Length}");
            }

            return new ClusterKey(bytes);
        }

        throw ConfigurationErrors.InFile(source, $"no key line found; expected '{FileTag} <base64 of 32 bytes>'");
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";

    /// <summary>
    /// Fills <paramref name="output"/> with HKDF-SHA256 key material for a full-sync session
    /// (salt "ClusterSync full sync v1", the caller's <paramref name="info"/>); see FullSync/README.md.
    /// </summary>
    public void DeriveFullSyncKeys(Span<byte> output, ReadOnlySpan<byte> info)
        => HKDF.DeriveKey(HashAlgorithmName.SHA256, _secret, output, "ClusterSync full sync v1"u8, info);

    /// <summary>The AES-256 key of <paramref name="sender"/> in <paramref name="epoch"/> (HKDF-SHA256).</summary>
    public byte[] DeriveSenderKey(ushort sender, ulong epoch)
    {
        Span<byte> info = stackalloc byte[2 + 8 + 5];
        "delta"u8.CopyTo(info);
        BinaryPrimitives.WriteUInt16BigEndian(info[5..], sender);
        BinaryPrimitives.WriteUInt64BigEndian(info[7..], epoch);
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, _secret, key, s_salt, info);
        return key;
    }
}
