using System.Globalization;
using System.Text;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The member's last epoch, kept across process restarts in <c>node.stateDirectory</c> (file
/// <c>clustersync-member{id}.epoch</c>). Every life of a member needs an epoch its peers never saw: the epoch is part
/// of every AES-GCM nonce and of the key derivation, and a peer drops packets of an epoch older than the one it holds
/// (a replay of an earlier life). The engine takes the wall clock in Unix milliseconds, which alone repeats or goes
/// back when the clock is stepped back (NTP correcting a bad RTC after a reboot, an operator's <c>date -s</c>): the
/// restarted member would reuse nonces under the old life's key, or be ignored by its peers as a replay until they
/// restart. With the file, a new life's epoch is <c>max(now in Unix ms, previous + 1)</c>, written (atomically: a temporary
/// file, flushed, renamed over the old one) before the engine exists, so no packet ever carries an unrecorded epoch.
/// </summary>
/// <remarks>
/// One line: <c>clustersync-epoch v1 member=ID epoch=N</c> and its newline. A file that cannot be read as that (truncated, edited,
/// another member's) stops the node at start with its path and what to do (exit 2): silently ignoring it would drop
/// the very guarantee it exists for.
/// </remarks>
internal static class EpochFile
{
    private const string Magic = "clustersync-epoch v1";

    /// <summary>
    /// The epoch for this life of member <paramref name="memberId"/>: newer than the one recorded in
    /// <paramref name="path"/> (if any) and than <paramref name="nowUnixMs"/>; recorded before it is returned.
    /// Returns the new epoch and the previous one (0: no file, a first start).
    /// </summary>
    /// <exception cref="ConfigurationException">The file is damaged or another member's (exit 2).</exception>
    /// <exception cref="NodeStartException">The file cannot be read or written (exit 1).</exception>
    public static (ulong Epoch, ulong Previous) Claim(string path, int memberId, long nowUnixMs)
    {
        ulong previous = Load(path, memberId);
        ulong epoch = Next(nowUnixMs, previous);
        Save(path, memberId, epoch);
        return (epoch, previous);
    }

    /// <summary>A new life's epoch: the wall clock in Unix ms, but always newer than the previous life's.</summary>
    public static ulong Next(long nowUnixMs, ulong previous)
        => Math.Max((ulong)Math.Max(1, nowUnixMs), previous == ulong.MaxValue ? previous : previous + 1);

    /// <summary>The recorded epoch, or 0 when there is no file (the member's first start with this state directory).</summary>
    public static ulong Load(string path, int memberId)
    {
        string text;
        try
        {
            if (!File.Exists(path))
            {
                return 0;
            }

            var info = new FileInfo(path);
            if (info.Length > 256)
            {
                throw Damaged(path, $"{info.Length} bytes, expected one short line");
            }

            text = File.ReadAllText(path, Encoding.ASCII);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new NodeStartException($"{path}: cannot read the member's epoch file (node.stateDirectory): {ex.Message}", ex);
        }

        // Written whole and renamed into place, the line always ends in its newline: without it the file was cut short.
        var parts = text.Split(' ');
        if (!text.EndsWith('\n') || text.IndexOf('\n') != text.Length - 1 || (parts = text[..^1].Split(' ')).Length != 4 || $"{parts[0]} {parts[1]}" != Magic
            || !parts[2].StartsWith("member=", StringComparison.Ordinal) || !parts[3].StartsWith("epoch=", StringComparison.Ordinal)
            || !int.TryParse(parts[2].AsSpan("member=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out int member)
            || !ulong.TryParse(parts[3].AsSpan("epoch=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out ulong epoch)
            || epoch == 0)
        {
            throw Damaged(path, $"expected one whole line '{Magic} member=ID epoch=N'");
        }

        if (member != memberId)
        {
            throw Damaged(path, $"it is member {member}'s, this node is member {memberId} (node.memberId); each member needs a state directory of its own or its own file");
        }

        return epoch;
    }

    /// <summary>Records <paramref name="epoch"/>: written to a temporary file, flushed to disk, then renamed over <paramref name="path"/>.</summary>
    public static void Save(string path, int memberId, ulong epoch)
    {
        string temporary = string.Create(CultureInfo.InvariantCulture, $"{path}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.WriteThrough))
            {
                stream.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Magic} member={memberId} epoch={epoch}\n")));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
            }

            throw new NodeStartException($"{path}: cannot write the member's epoch file (set node.stateDirectory to a directory this node may write): {ex.Message}", ex);
        }
    }

    private static ConfigurationException Damaged(string path, string what)
        => ConfigurationErrors.InFile(path, $"damaged epoch file ({what}). It keeps a restarted member from reusing an epoch its peers saw: "
            + "if the wall clock is right, move it aside and start again (a new epoch is taken from the clock)");
}
