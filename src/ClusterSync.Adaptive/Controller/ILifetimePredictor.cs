using ClusterSync.Adaptive.Features;
using ClusterSync.Adaptive.Model;
using ClusterSync.Connections;

namespace ClusterSync.Adaptive.Controller;

/// <summary>
/// A loaded lifetime model as the controller uses it. Called on the data-plane thread: no blocking, no allocation,
/// well under 2 µs. Implementations are immutable; a new model is a new instance swapped in whole.
/// </summary>
public interface ILifetimePredictor
{
    /// <summary>What status shows: the model's name and version.</summary>
    string Name { get; }

    /// <summary>
    /// The delay for a connection starting at <paramref name="createdMs"/> that minimizes
    /// <c>price · P(synced) + E[exposure]</c> (milliseconds; 0 now, −1 never), and, in <paramref name="probabilityLong"/>,
    /// its predicted P(lifetime &gt; <paramref name="checkpointSeconds"/>) (for calibration and drift).
    /// </summary>
    int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong);

    /// <summary>
    /// The model's distribution for this connection on <see cref="LifetimeModel.DelayGrid"/>: P(lifetime &gt; d) into
    /// <paramref name="survival"/> and E[min(lifetime, d)] into <paramref name="exposure"/> (each as long as the grid) —
    /// the prior a site's own per-service lifetimes are blended with while they are few. False: the model has none.
    /// </summary>
    bool TryDistribution(in ConnectionKey key, long createdMs, Span<double> survival, Span<double> exposure) => false;
}

/// <summary>Reads and validates a model file (schema, feature version) into a predictor, or says why not.</summary>
public interface IModelLoader
{
    /// <summary>True with the predictor; false with a reason naming the file and what was expected.</summary>
    bool TryLoad(string path, out ILifetimePredictor? predictor, out string reason);
}

/// <summary>The ML.NET lifetime model written by <c>clustersync train</c> (<see cref="LifetimeModel"/>), with the shared features.</summary>
public sealed class LifetimeModelPredictor(LifetimeModel model) : ILifetimePredictor
{
    public LifetimeModel Model => model;

    public string Name => model.Name;

    public int ChooseDelayMs(in ConnectionKey key, long createdMs, double price, double checkpointSeconds, out float probabilityLong)
    {
        var estimate = model.Predict(FeatureExtractor.FromKey(key, createdMs / 1000.0));
        probabilityLong = (float)model.ProbabilityAlive(estimate, GridIndex(checkpointSeconds));
        int g = model.ChooseDelay(estimate, price);
        double d = LifetimeModel.DelayGrid[g];
        return double.IsPositiveInfinity(d) ? -1 : (int)Math.Round(d * 1000);
    }

    public bool TryDistribution(in ConnectionKey key, long createdMs, Span<double> survival, Span<double> exposure)
    {
        model.CopyDistribution(model.Predict(FeatureExtractor.FromKey(key, createdMs / 1000.0)), survival, exposure);
        return true;
    }

    /// <summary>The grid delay closest to <paramref name="seconds"/> (the grid is the model's calibration grid).</summary>
    public static int GridIndex(double seconds)
    {
        var grid = LifetimeModel.DelayGrid;
        int best = 0;
        for (int i = 1; i < grid.Count - 1; i++)
        {
            if (Math.Abs(grid[i] - seconds) < Math.Abs(grid[best] - seconds))
            {
                best = i;
            }
        }

        return best;
    }
}

/// <summary>Loads model zips with <see cref="LifetimeModel.TryLoad"/> (format, feature version and schema validated).</summary>
public sealed class LifetimeModelLoader : IModelLoader
{
    public bool TryLoad(string path, out ILifetimePredictor? predictor, out string reason)
    {
        if (LifetimeModel.TryLoad(path, out var model, out reason))
        {
            predictor = new LifetimeModelPredictor(model);
            return true;
        }

        predictor = null;
        return false;
    }
}
