using System.Security.Cryptography;
using System.Text;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The control endpoint's bearer token file (<c>node.control.tokenFile</c>): one line of 16 to 1,024 printable ASCII
/// characters (no spaces). Checked like the cluster key file: a regular file (not a device or a pipe) of at most
/// <see cref="MaxFileBytes"/> bytes, not accessible by group or others (chmod 600), else a
/// <see cref="ConfigurationException"/> naming the file and what was expected.
/// </summary>
public static class ControlTokenFile
{
    public const int MinTokenLength = 16;
    public const int MaxFileBytes = 1024 + 2;

    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>A new random token (32 bytes, base64url: 43 characters).</summary>
    public static string Generate()
        => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Writes <paramref name="token"/> (or a new one) to a new owner-only (0600) file and returns it.</summary>
    public static string Write(string path, string? token = null)
    {
        token ??= Generate();
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, options))
        {
            stream.Write(Encoding.ASCII.GetBytes(token + "\n"));
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // also when it replaced a file
        }

        return token;
    }

    /// <summary>Reads and checks a token file; throws <see cref="ConfigurationException"/> with the reason.</summary>
    public static string Load(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw ConfigurationErrors.InFile(path, $"the token file does not exist (make one: head -c 32 /dev/urandom | base64 > {path}; chmod 600 {path})");
            }

            if ((info.Attributes & FileAttributes.Device) != 0 || info.Length == 0 || info.Length > MaxFileBytes)
            {
                throw ConfigurationErrors.InFile(path,
                    $"expected a regular file holding one token line ({MinTokenLength} to 1024 characters), found {(info.Length == 0 ? "an empty file or not a regular file (a device or a pipe)" : $"{info.Length} bytes")}");
            }

            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(path);
                if ((mode & GroupOrOther) != 0)
                {
                    throw ConfigurationErrors.InFile(path,
                        $"the token file is accessible by group or others (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}); it must be readable by its owner only: chmod 600 {path}");
                }
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            if (!stream.CanSeek)
            {
                throw ConfigurationErrors.InFile(path, "expected a regular file holding the token, found a device or a pipe");
            }

            var bytes = new byte[MaxFileBytes + 1];
            int read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            var token = Encoding.ASCII.GetString(bytes, 0, Math.Min(read, MaxFileBytes)).Trim();
            if (read > MaxFileBytes || token.Length < MinTokenLength || token.Any(c => c is <= ' ' or > '~'))
            {
                throw ConfigurationErrors.InFile(path,
                    $"expected one line of {MinTokenLength} to 1024 printable characters without spaces, found {(token.Length < MinTokenLength ? $"{token.Length} characters" : "other content")}");
            }

            return token;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw ConfigurationErrors.InFile(path, $"cannot read the token file: {ex.Message}");
        }
    }
}
