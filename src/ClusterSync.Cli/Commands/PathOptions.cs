namespace ClusterSync.Cli.Commands;

/// <summary>
/// Checks of the paths a command line names, before any work: a bad one is one line naming the option as the user typed
/// it, the full path and what was expected (<see cref="ConfigurationException"/>, exit 2), never an exception from deep
/// inside the command after minutes of work.
/// </summary>
internal static class PathOptions
{
    /// <summary>A file the command will write: its directory exists and the path is not a directory.</summary>
    public static string OutputFile(string option, string path)
    {
        var full = Full(option, path);
        if (Directory.Exists(full))
        {
            throw ConfigurationErrors.At(option, $"'{full}' is a directory; expected the path of a file to write");
        }

        var directory = Path.GetDirectoryName(full);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw ConfigurationErrors.At(option, $"the directory of '{full}' does not exist; expected a file in an existing directory");
        }

        return full;
    }

    /// <summary>A file the command reads: it exists.</summary>
    public static string InputFile(string option, string path)
    {
        var full = Full(option, path);
        if (!File.Exists(full))
        {
            throw ConfigurationErrors.At(option, Directory.Exists(full) ? $"'{full}' is a directory; expected a file" : $"no such file '{full}'");
        }

        return full;
    }

    /// <summary>A directory the command reads: it exists.</summary>
    public static string InputDirectory(string option, string path)
    {
        var full = Full(option, path);
        if (!Directory.Exists(full))
        {
            throw ConfigurationErrors.At(option, File.Exists(full) ? $"'{full}' is a file; expected a directory" : $"no such directory '{full}'");
        }

        return full;
    }

    private static string Full(string option, string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw ConfigurationErrors.At(option, "expected a path, found an empty one");
        }

        try
        {
            return Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw ConfigurationErrors.At(option, $"'{path}' is not a usable path: {ex.Message}");
        }
    }
}
