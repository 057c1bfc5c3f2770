using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ClusterSync.Node.Configuration;

/// <summary>Durations in configuration files: <c>"5ms"</c>, <c>"1.5s"</c>, <c>"2m"</c>, <c>"1h"</c> or <c>"00:00:30"</c>.</summary>
internal sealed class DurationJsonConverter : JsonConverter<TimeSpan>
{
    public const string Expected = "expected a duration string like \"5ms\", \"1.5s\", \"2m\", \"1h\" or \"00:00:30\"";

    public override TimeSpan Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String || !TryParse(reader.GetString()!, out var value))
        {
            throw new JsonException(Expected);
        }

        return value;
    }

    public override void Write(Utf8JsonWriter writer, TimeSpan value, JsonSerializerOptions options)
        => writer.WriteStringValue(Format(value));

    public static string Format(TimeSpan value)
        => value.Ticks % TimeSpan.TicksPerSecond == 0
            ? $"{(long)value.TotalSeconds}s"
            : string.Create(CultureInfo.InvariantCulture, $"{value.TotalMilliseconds}ms");

    public static bool TryParse(string text, out TimeSpan value)
    {
        text = text.Trim();
        (string Suffix, double Ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && double.IsFinite(n) && Math.Abs(n * ms) < TimeSpan.MaxValue.TotalMilliseconds)
            {
                value = TimeSpan.FromMilliseconds(n * ms);
                return true;
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && text.Contains(':', StringComparison.Ordinal);
    }
}
