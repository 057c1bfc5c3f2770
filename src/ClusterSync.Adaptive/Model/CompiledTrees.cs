using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Microsoft.ML.Trainers.FastTree;

namespace ClusterSync.Adaptive.Model;

/// <summary>
/// A tree ensemble (FastTree or LightGBM, as trained by ML.NET) flattened into arrays and evaluated without
/// ML.NET's per-call machinery: a few hundred nanoseconds per connection, no allocation. <see cref="LifetimeModel"/>
/// checks at load that it agrees with ML.NET's own evaluation.
/// </summary>
/// <remarks>
/// Walking 100 trees of 32 leaves node by node costs ~2 µs (dependent loads, unpredictable branches). So, as in
/// QuickScorer (Lucchese et al., SIGIR 2015), each tree's leaves are numbered left to right as the bits of a word, and
/// a split whose test fails ("value ≤ threshold" false: the walk goes right) rules out the leaves of its left subtree;
/// the leaf the walk would reach is the leftmost one no failed test rules out. Whether a test fails depends on the
/// value only through how many of its feature's thresholds lie below it (its bin), so for every feature and bin the
/// AND of the masks of all its failed tests, one word per tree, is computed at load. A prediction is then one binary
/// search per feature, an AND of one table row per feature (vectorized), and one trailing-zero count per tree: the
/// same leaves, summed in the same order, as the walk. Models with trees over 32 leaves, more than
/// <see cref="MaxStackTrees"/> trees, or tables over <see cref="MaxTableWords"/> words walk.
/// </remarks>
internal sealed class CompiledTrees
{
    private const int MaxTableWords = 1 << 20; // 4 MiB of masks at most
    private const int MaxStackTrees = 1024;    // one word per tree on the stack
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
    private readonly BitTables? _bits;

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
        _bits = BitTables.TryBuild(_roots, _nodes, _leaf, maxFeature);
    }

    /// <summary>True when predictions use the bit tables (see the remarks); false: the node-by-node walk.</summary>
    public bool UsesBitTables => _bits is not null;

    /// <summary>The distinct thresholds the splits on <paramref name="feature"/> use, ascending (tests probe their edges).</summary>
    public float[] ThresholdsOf(int feature) => [.. _nodes.Where(n => n.Feature == feature).Select(n => n.Threshold).Distinct().Order()];

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

        return _bits is { } bits ? bits.Evaluate(features, _bias) : Walk(features);
    }

    /// <summary>The node-by-node walk: the reference the bit tables must agree with, and the path for models they cannot serve.</summary>
    public float Walk(ReadOnlySpan<float> features)
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

    /// <summary>Per feature and bin, one leaf-mask word per tree; per tree, its leaves' values left to right (see the remarks).</summary>
    private sealed class BitTables
    {
        private readonly float[][] _cuts;   // per used feature: its thresholds, sorted, distinct
        private readonly int[] _features;   // the used features
        private readonly uint[][] _rows;    // per used feature: (cuts + 1) rows of one word per tree
        private readonly double[] _values;  // tree t's leaf i at t * 32 + i
        private readonly int _trees;

        private BitTables(float[][] cuts, int[] features, uint[][] rows, double[] values, int trees)
        {
            _cuts = cuts;
            _features = features;
            _rows = rows;
            _values = values;
            _trees = trees;
        }

        public static BitTables? TryBuild(int[] roots, Node[] nodes, double[] leaf, int maxFeature)
        {
            int trees = roots.Length;
            if (trees > MaxStackTrees)
            {
                return null;
            }

            var values = new double[trees * 32];
            var failMask = new uint[nodes.Length]; // the leaves a failed test at this node rules out, as kept bits
            for (int t = 0; t < trees; t++)
            {
                int next = 0;
                if (!Number(roots[t], t, ref next))
                {
                    return null; // more than 32 leaves
                }
            }

            var used = nodes.Select(n => n.Feature).Distinct().Order().ToArray();
            var cuts = new float[used.Length][];
            var rows = new uint[used.Length][];
            long words = 0;
            for (int u = 0; u < used.Length; u++)
            {
                int f = used[u];
                cuts[u] = [.. nodes.Where(n => n.Feature == f).Select(n => n.Threshold).Distinct().Order()];
                words += (long)(cuts[u].Length + 1) * trees;
                if (words > MaxTableWords)
                {
                    return null;
                }
            }

            // Which tree owns each node: walk from every root once.
            var owner = new int[nodes.Length];
            for (int t = 0; t < trees; t++)
            {
                Own(roots[t], t);
            }

            for (int u = 0; u < used.Length; u++)
            {
                int f = used[u];
                var c = cuts[u];
                var row = rows[u] = new uint[(c.Length + 1) * trees];
                row.AsSpan(0, trees).Fill(uint.MaxValue); // bin 0: the value is ≤ every threshold, no test fails
                var byCut = Enumerable.Range(0, nodes.Length).Where(i => nodes[i].Feature == f)
                    .ToLookup(i => Array.BinarySearch(c, nodes[i].Threshold));
                for (int b = 1; b <= c.Length; b++)
                {
                    // Bin b: above the b lowest thresholds; the tests at threshold c[b − 1] now fail too.
                    row.AsSpan((b - 1) * trees, trees).CopyTo(row.AsSpan(b * trees, trees));
                    foreach (int i in byCut[b - 1])
                    {
                        row[(b * trees) + owner[i]] &= failMask[i];
                    }
                }
            }

            return new BitTables(cuts, used, rows, values, trees);

            // Numbers the leaves under `node` left to right from `next`; records every split's fail mask.
            bool Number(int node, int t, ref int next)
            {
                if (node < 0)
                {
                    if (next >= 32)
                    {
                        return false;
                    }

                    values[(t * 32) + next] = leaf[~node];
                    next++;
                    return true;
                }

                int first = next;
                if (!Number(nodes[node].Left, t, ref next))
                {
                    return false;
                }

                int count = next - first;
                uint leftLeaves = (count == 32 ? uint.MaxValue : ((1u << count) - 1)) << first;
                failMask[node] = ~leftLeaves;
                return Number(nodes[node].Right, t, ref next);
            }

            void Own(int node, int t)
            {
                if (node >= 0)
                {
                    owner[node] = t;
                    Own(nodes[node].Left, t);
                    Own(nodes[node].Right, t);
                }
            }
        }

        [SkipLocalsInit]
        public float Evaluate(ReadOnlySpan<float> features, double bias)
        {
            int trees = _trees;
            Span<uint> alive = stackalloc uint[MaxStackTrees];
            ref uint a0 = ref MemoryMarshal.GetReference(alive);
            int vectorEnd = Vector256.IsHardwareAccelerated ? trees - (trees % Vector256<uint>.Count) : 0;
            for (int u = 0; u < _features.Length; u++)
            {
                var rows = _rows[u];
                int start = Bin(_cuts[u], features[_features[u]]) * trees; // rows holds (cuts + 1) · trees words
                ref uint r0 = ref rows[start];
                if (u == 0)
                {
                    rows.AsSpan(start, trees).CopyTo(alive);
                    continue;
                }

                int i = 0;
                for (; i < vectorEnd; i += Vector256<uint>.Count)
                {
                    (Vector256.LoadUnsafe(ref a0, (nuint)i) & Vector256.LoadUnsafe(ref r0, (nuint)i)).StoreUnsafe(ref a0, (nuint)i);
                }

                for (; i < trees; i++)
                {
                    Unsafe.Add(ref a0, i) &= Unsafe.Add(ref r0, i);
                }
            }

            if (_features.Length == 0)
            {
                alive.Fill(uint.MaxValue);
            }

            // Every word keeps at least its tree's rightmost leaf (only left subtrees are ruled out): the count is < 32.
            double sum = bias;
            ref double v0 = ref MemoryMarshal.GetArrayDataReference(_values);
            for (int t = 0; t < trees; t++)
            {
                sum += Unsafe.Add(ref v0, (t * 32) + BitOperations.TrailingZeroCount(Unsafe.Add(ref a0, t)));
            }

            return (float)sum;
        }

        /// <summary>How many of <paramref name="cuts"/> lie below <paramref name="v"/> (NaN: all of them: every "≤" test fails, as in the walk).</summary>
        private static int Bin(float[] cuts, float v)
        {
            if (float.IsNaN(v))
            {
                return cuts.Length;
            }

            int lo = 0, hi = cuts.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (cuts[mid] < v)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }
    }
}
