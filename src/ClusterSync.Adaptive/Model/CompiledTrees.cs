using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Trainers.FastTree;

namespace ClusterSync.Adaptive.Model;

/// <summary>
/// A tree ensemble (FastTree or LightGBM, as trained by ML.NET) flattened into arrays and evaluated without
/// ML.NET's per-call machinery: a few hundred nanoseconds per connection, no allocation. <see cref="LifetimeModel"/>
/// checks at load that it agrees with ML.NET's own evaluation.
/// </summary>
internal sealed class CompiledTrees
{
    // One 16-byte node: a walk touches one cache line per level.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Node(float threshold, int feature, int left, int right)
    {
        public readonly float Threshold = threshold;
        public readonly int Feature = feature;
        public readonly int Left = left;
        public readonly int Right = right;
    }

    private readonly int[] _roots;
    private readonly Node[] _nodes;
    private readonly double[] _leaf;
    private readonly double _bias;

    private CompiledTrees(int[] roots, int[] feature, float[] threshold, int[] left, int[] right, double[] leaf, double bias, int maxFeature)
    {
        _roots = roots;
        _nodes = new Node[feature.Length];
        for (int i = 0; i < feature.Length; i++)
        {
            _nodes[i] = new Node(threshold[i], feature[i], left[i], right[i]);
        }

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

        foreach (var child in left.Concat(right).Concat(roots))
        {
            if (child >= feature.Count || (child < 0 && ~child >= leaf.Count))
            {
                throw new NotSupportedException($"a tree refers to node {child} outside the ensemble");
            }
        }

        if (feature.Any(f => f < 0))
        {
            throw new NotSupportedException("a split on a negative feature index");
        }

        return new CompiledTrees([.. roots], [.. feature], [.. threshold], [.. left], [.. right], [.. leaf], ensemble.Bias, maxFeature);
    }

    /// <summary>
    /// Sum of the trees' leaves for <paramref name="features"/>. Indexes were checked at compile time (every split
    /// feature &lt; <see cref="MaxFeatureIndex"/> + 1 ≤ the schema's count, every child inside the arrays), so the walk
    /// runs without bounds checks; <paramref name="features"/> must hold at least <see cref="MaxFeatureIndex"/> + 1 floats.
    /// </summary>
    public float Evaluate(ReadOnlySpan<float> features)
    {
        if (features.Length <= MaxFeatureIndex)
        {
            throw new ArgumentException($"needs {MaxFeatureIndex + 1} features", nameof(features));
        }

        double sum = _bias;
        ref float f0 = ref MemoryMarshal.GetReference(features);
        ref Node n0 = ref MemoryMarshal.GetArrayDataReference(_nodes);
        ref double l0 = ref MemoryMarshal.GetArrayDataReference(_leaf);
        foreach (int root in _roots)
        {
            int node = root;
            while (node >= 0)
            {
                ref readonly Node n = ref Unsafe.Add(ref n0, node);
                node = Unsafe.Add(ref f0, n.Feature) <= n.Threshold ? n.Left : n.Right;
            }

            sum += Unsafe.Add(ref l0, ~node);
        }

        return (float)sum;
    }
}
