using System.Net;

namespace ClusterSync.Adaptive.Tests.Features;

public sealed class FeatureExtractorTests
{
    [Fact]
    public void FromKeyAndFromTrace_SameConnection_SameFeatures()
    {
        var key = ConnectionKey.Create(IPAddress.Parse("10.1.2.3"), 40000, IPAddress.Parse("198.51.100.7"), 443, 6);
        var rec = new TraceRecord(1_767_621_600.25, 12, 6, "10.1.2.3", 40000, "198.51.100.7", 443, "web", 1, 2, 3, 4);
        Span<float> a = stackalloc float[FeatureSchema.Count];
        Span<float> b = stackalloc float[FeatureSchema.Count];
        FeatureExtractor.Write(FeatureExtractor.FromKey(key, rec.StartUnixSeconds), a);
        FeatureExtractor.Write(FeatureExtractor.FromTrace(rec), b);
        Assert.True(a.SequenceEqual(b), FeatureExtractor.Describe(a) + " vs " + FeatureExtractor.Describe(b));
        Assert.Equal(1f, a[FeatureSchema.SourceInternal]);
        Assert.Equal(0f, a[FeatureSchema.DestinationInternal]);
        Assert.Equal(443f, a[FeatureSchema.LowPort]);
        Assert.Equal(14f, a[FeatureSchema.HourOfDay], 2);
    }

    [Theory]
    [InlineData("10.0.0.1", true)]
    [InlineData("172.20.1.1", true)]
    [InlineData("172.32.1.1", false)]
    [InlineData("192.168.4.4", true)]
    [InlineData("100.64.0.1", true)]
    [InlineData("100.128.0.1", false)]
    [InlineData("8.8.8.8", false)]
    [InlineData("fd00::1", true)]
    [InlineData("fe80::1", true)]
    [InlineData("2001:db8::1", false)]
    [InlineData("AS786", true)]
    [InlineData("AS15169", false)]
    public void IsInternal_Addresses_ByScope(string address, bool expected)
    {
        Assert.Equal(expected, FeatureExtractor.IsInternal(address));
        if (IPAddress.TryParse(address, out var ip))
        {
            var other = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? IPAddress.Parse("8.8.4.4") : IPAddress.Parse("2001:db8::2");
            var key = ConnectionKey.Create(ip, 1, other, 2, 6);
            Assert.Equal(expected, FeatureExtractor.FromKey(key, 0).SourceInternal);
        }
    }

    [Fact]
    public void Schema_NamesMatchCount()
    {
        Assert.Equal(FeatureSchema.Count, FeatureSchema.Names.Count);
        Assert.Equal(FeatureSchema.Count, FeatureSchema.Names.Distinct().Count());
    }
}
