using System.Text.Json;

namespace ClusterSync.Plugins.Conntrack.Tests;

public sealed class ConntrackSettingsTests
{
    private static ConntrackSettings Parse(string json) => ConntrackSettings.Parse(JsonDocument.Parse(json).RootElement);

    [Fact]
    public void Parse_NullOrEmpty_Defaults()
    {
        var s = ConntrackSettings.Parse(null);
        Assert.Equal(16 << 20, s.ReceiveBufferBytes);
        Assert.Equal(256 << 10, s.BatchBytes);
        Assert.False(s.Ack);
        Assert.True(s.Events);
        Assert.Equal(0, s.ResyncSeconds);
        Assert.Equal(s, Parse("{}"));
    }

    [Fact]
    public void Parse_EverySetting_Read()
    {
        var s = Parse("""{ "receiveBufferBytes": 8388608, "batchBytes": 65536, "ack": true, "expectedConnections": 10, "events": false, "resyncSeconds": 30 }""");
        Assert.Equal(new ConntrackSettings { ReceiveBufferBytes = 8 << 20, BatchBytes = 64 << 10, Ack = true, ExpectedConnections = 10, Events = false, ResyncSeconds = 30 }, s);
    }

    [Theory]
    [InlineData("""{ "batchBytes": 12 }""", "batchBytes: expected an integer 4096-16777216, found 12")]
    [InlineData("""{ "receiveBufferBytes": "big" }""", "receiveBufferBytes: expected an integer")]
    [InlineData("""{ "ack": 1 }""", "ack: expected true or false")]
    [InlineData("""{ "resyncSeconds": -1 }""", "resyncSeconds: expected an integer 0-86400")]
    [InlineData("""{ "buffer": 1 }""", "buffer: unknown setting (expected receiveBufferBytes, batchBytes, ack")]
    [InlineData("""[1]""", "expected an object of settings")]
    public void Parse_BadSetting_ArgumentExceptionNamingIt(string json, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => Parse(json));
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }
}
