namespace ClusterSync;

/// <summary>
/// Bad configuration or bad input: the message names the file, the field and what was expected (exit code 2).
/// Built by <see cref="ConfigurationErrors"/> (the collector and the single-error helpers), nowhere else.
/// </summary>
public sealed class ConfigurationException : Exception
{
    public ConfigurationException(string message)
        : base(message)
    {
        Errors = [message];
    }

    public ConfigurationException(IReadOnlyList<string> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}
