using ClusterSync.Connections;

namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// A loaded lifetime model as the controller uses it: at connection start, the probability that the connection lives
/// longer than <paramref name="horizonSeconds"/>. Called on the data-plane thread: no blocking, no allocation, well
/// under 2 µs. Implementations are immutable; a new model is a new instance swapped in whole.
/// </summary>
internal interface ILifetimePredictor
{
    /// <summary>What status shows: the model's name and version.</summary>
    string Name { get; }

    /// <summary>P(lifetime &gt; <paramref name="horizonSeconds"/>) for a connection of <paramref name="serviceClass"/> starting now.</summary>
    float ProbabilityLivesLongerThan(in ConnectionKey key, in ConnectionEntry entry, string serviceClass, double horizonSeconds);
}

/// <summary>Reads and validates a model file (schema, feature version) into a predictor, or says why not.</summary>
internal interface IModelLoader
{
    /// <summary>True with the predictor; false with a reason naming the file and what was expected.</summary>
    bool TryLoad(string path, out ILifetimePredictor? predictor, out string reason);
}
