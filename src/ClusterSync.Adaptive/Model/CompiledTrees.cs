using Microsoft.ML.Trainers.FastTree;

namespace ClusterSync.Adaptive.Model;

/// <summary>
/// A tree ensemble (FastTree or LightGBM, as trained by ML.NET) flattened into arrays and evaluated without
/// ML.NET's per-call machinery: a few hundred nanoseconds per connection, no allocation. <see cref="LifetimeModel"/>
/// checks at load that it agrees with ML.NET's own evaluation.
/// </summary>
internal sealed class CompiledTrees
{
    private readonly int[] _roots;
    private readonly int[] _feature;
    private readonly float[] _threshold;
    private readonly int[] _left;
    private readonly int[] _right;
    private readonly double[] _leaf;
    private readonly double _bias;

    private CompiledTrees(int[] roots, int[] feature, float[] threshold, int[] left, int[] right, double[] leaf, double bias, int maxFeature)
    {
        _roots = roots;
        _feature = feature;
        _threshold = threshold;
        _left = left;
        _right = right;
        _leaf = leaf;
        _bias = bias;
        MaxFeatureIndex = maxFeature;
    }

    public int TreeCount => _roots.Length;

    public int MaxFeatureIndex { get; }

    public static CompiledTrees From(RegressionTreeEnsemble ensemble)
    {
        var roots = new List<int>();
        var feature = new List<int>();
        var threshold = new List<float>();
        var left = new List<int>();
        var right = new List<int>();
        var leaf = new List<double>();
        int maxFeature = -1;
        for (int t = 0; t < ensemble.Trees.Count; t++)
        {
            var tree = ensemble.Trees[t];
            double weight = ensemble.TreeWeights[t];
            int nodeBase = feature.Count;
            int leafBase = leaf.Count;
            if (tree.CategoricalSplitFlags.Any(c => c))
            {
                throw new NotSupportedException("categorical splits are not supported (the feature schema has none)");
            }

            if (tree.NumberOfNodes == 0)
            {
                // A single-leaf tree: encode as a leaf reference.
                roots.Add(~leafBase);
            }
            else
            {
                roots.Add(nodeBase);
            }

            for (int n = 0; n < tree.NumberOfNodes; n++)
            {
                feature.Add(tree.NumericalSplitFeatureIndexes[n]);
                maxFeature = Math.Max(maxFeature, tree.NumericalSplitFeatureIndexes[n]);
                threshold.Add(tree.NumericalSplitThresholds[n]);
                left.Add(Map(tree.LeftChild[n]));
                right.Add(Map(tree.RightChild[n]));
            }

            for (int l = 0; l < tree.NumberOfLeaves; l++)
            {
                leaf.Add(tree.LeafValues[l] * weight);
            }

            int Map(int child) => child >= 0 ? nodeBase + child : ~(leafBase + ~child);
        }

        return new CompiledTrees([.. roots], [.. feature], [.. threshold], [.. left], [.. right], [.. leaf], ensemble.Bias, maxFeature);
    }

    public float Evaluate(ReadOnlySpan<float> features)
    {
        double sum = _bias;
        var feature = _feature;
        var threshold = _threshold;
        var left = _left;
        var right = _right;
        foreach (int root in _roots)
        {
            int node = root;
            while (node >= 0)
            {
                node = features[feature[node]] <= threshold[node] ? left[node] : right[node];
            }

            sum += _leaf[~node];
        }

        return (float)sum;
    }
}
