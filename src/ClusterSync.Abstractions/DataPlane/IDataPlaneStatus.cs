namespace ClusterSync.DataPlane;

/// <summary>
/// Optional: a data-plane source or sink that implements this reports its own counters (for example the connections
/// a sink holds), which the host shows in <c>/status</c> under <c>dataPlane.plugin</c>. Called from any thread.
/// </summary>
public interface IDataPlaneStatus
{
    /// <summary>The counters by snake_case name (a snapshot).</summary>
    IReadOnlyDictionary<string, long> GetCounters();
}
