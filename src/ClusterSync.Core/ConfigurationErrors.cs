namespace ClusterSync;

/// <summary>
/// The one place that builds <see cref="ConfigurationException"/>s: collects every problem of a configuration as
/// <c>json.path: what was expected</c> (validators add, nothing stops at the first), then throws them all at once, each
/// prefixed with the file. The static helpers build a single error the same way (for what only the machine can tell
/// after validation: a plugin missing, an address not of this machine).
/// </summary>
public sealed class ConfigurationErrors
{
    private readonly List<string> _errors = [];

    /// <param name="file">The configuration file every error is prefixed with (full path), or null for none.</param>
    public ConfigurationErrors(string? file = null) => File = file;

    public string? File { get; }

    public int Count => _errors.Count;

    /// <summary>The errors collected so far, without the file prefix.</summary>
    public IReadOnlyList<string> Items => _errors;

    /// <summary>Adds <c>path: expected</c> (<paramref name="path"/> is the JSON path, for example <c>cluster.members[1].address</c>).</summary>
    public void Add(string path, string expected) => _errors.Add($"{path}: {expected}");

    /// <summary>Adds errors already written as <c>path: expected</c> (from an options record's own <c>Validate(path)</c>).</summary>
    public void AddRange(IEnumerable<string> errors) => _errors.AddRange(errors);

    /// <summary>Adds every error of <paramref name="ex"/> under <paramref name="path"/> (a key or token file that did not load).</summary>
    public void Add(string path, ConfigurationException ex)
    {
        foreach (var e in ex.Errors)
        {
            Add(path, e);
        }
    }

    /// <summary>The collected errors as one exception (each line <c>FILE: path: expected</c>).</summary>
    public ConfigurationException ToException()
        => new(_errors.Select(e => File is null ? e : $"{File}: {e}").ToList());

    /// <summary>Throws <see cref="ToException"/> when any error was collected.</summary>
    public void ThrowIfAny()
    {
        if (_errors.Count > 0)
        {
            throw ToException();
        }
    }

    /// <summary>One error: <c>FILE: path: expected</c>.</summary>
    public static ConfigurationException At(string file, string path, string expected) => new($"{file}: {path}: {expected}");

    /// <summary>One error of an option or setting without a file (<c>path: expected</c>: a command-line option, a rule).</summary>
    public static ConfigurationException At(string path, string expected) => new($"{path}: {expected}");

    /// <summary>One error at a line of an input file (<c>FILE:LINE: problem</c>): a trace or log being imported.</summary>
    public static ConfigurationException AtLine(string file, long line, string problem)
        => new(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{file}:{line}: {problem}"));

    /// <summary>Every error of an options record's own validation (<c>path: expected</c> each) as one exception.</summary>
    public static ConfigurationException All(IReadOnlyList<string> errors) => new(errors);

    /// <summary>One error about a file as a whole (<c>FILE: problem</c>): unreadable, malformed, a key or token file.</summary>
    public static ConfigurationException InFile(string file, string problem) => new($"{file}: {problem}");
}
