namespace ClusterSync.Adaptive.Model;

/// <summary>A model file was refused; <see cref="Exception.Message"/> names the file and the reason.</summary>
internal sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message)
        : base(message)
    {
    }

    public ModelLoadException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
