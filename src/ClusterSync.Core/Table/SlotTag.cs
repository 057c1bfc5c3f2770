using System.Runtime.InteropServices;

namespace ClusterSync.Table;

/// <summary>
/// Four bytes per slot that never travel on the wire and fill what was padding in a table slot (so the table's
/// memory per entry does not change): the records sent for this life of the connection (saturating), the delay
/// decided for it (<see cref="DelayGrid"/> code) and the decider's score (0-254 for 0-1, 255 for none).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct SlotTag
{
    public ushort Messages;
    public byte DelayCode;
    public byte Score;

    public const byte NoScore = 255;

    public static byte EncodeScore(float score)
        => float.IsNaN(score) ? NoScore : (byte)Math.Clamp(MathF.Round(score * 254f), 0f, 254f);

    public static float DecodeScore(byte score) => score == NoScore ? float.NaN : score / 254f;
}

/// <summary>
/// A log-spaced grid of sync delays in one byte: code 0 is "now", 255 is "never", codes 1-254 are 50 ms × 1.07^(c−1)
/// (50 ms … about 16 days, 7% steps). The engine rounds a decided delay to the grid before it schedules it, so the
/// delay recorded is the delay applied.
/// </summary>
public static class DelayGrid
{
    public const byte Now = 0;
    public const byte Never = 255;
    private const double BaseMs = 50;
    private static readonly double LogRatio = Math.Log(1.07);
    private static readonly int[] s_ms = Build();

    private static int[] Build()
    {
        var ms = new int[256];
        for (int c = 1; c < 255; c++)
        {
            ms[c] = (int)Math.Min(int.MaxValue, Math.Round(BaseMs * Math.Exp((c - 1) * LogRatio)));
        }

        ms[Never] = -1;
        return ms;
    }

    public static byte Encode(int delayMs)
    {
        if (delayMs <= 0)
        {
            return Now;
        }

        double c = 1 + (Math.Log(Math.Max(delayMs, BaseMs) / BaseMs) / LogRatio);
        return (byte)Math.Clamp((int)Math.Round(c), 1, 254);
    }

    /// <summary>Milliseconds for a code; 0 for now, −1 for never.</summary>
    public static int Decode(byte code) => s_ms[code];
}
