namespace ClusterSync.Node.Runtime;

/// <summary>
/// The node could not start although its configuration is valid (a port in use, an address taken): the message names
/// the file and the field. <c>clustersync node</c> exits 1 with it; <see cref="ClusterNode.StartAsync"/> throws it.
/// </summary>
public sealed class NodeStartException : Exception
{
    public NodeStartException(string message)
        : base(message)
    {
    }

    public NodeStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NodeStartException()
    {
    }
}
