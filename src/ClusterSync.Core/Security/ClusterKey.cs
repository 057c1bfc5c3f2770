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

    /// <summary>Reads a key file; a bad file throws <see cref="ConfigurationException"/> naming the file and what was expected.</summary>
    public static ClusterKey Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{path}: cannot read the cluster key file: {ex.Message}");
        }

        return Parse(text, path);
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
                throw new ConfigurationException($"{source}: expected a line '{FileTag} <base64 of 32 bytes>' (made by 'clustersync keygen'), found '{Truncate(line)}'");
            }

            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(line[(FileTag.Length + 1)..].Trim());
            }
            catch (FormatException)
            {
                throw new ConfigurationException($"{source}: the key is not valid base64");
            }

            if (bytes.Length != 32)
            {
                throw new ConfigurationException($"{source}: the key must be 32 bytes, found {bytes.Length}");
            }

            return new ClusterKey(bytes);
        }

        throw new ConfigurationException($"{source}: no key line found; expected '{FileTag} <base64 of 32 bytes>'");
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
