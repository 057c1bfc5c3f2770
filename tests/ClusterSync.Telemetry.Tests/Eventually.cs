using System.Diagnostics;

namespace ClusterSync.Telemetry.Tests;

/// <summary>Waits on a condition with an overall timeout instead of a fixed delay (CI machines are loaded).</summary>
internal static class Eventually
{
    /// <summary>
    /// Runs <paramref name="step"/> (e.g. feeds more work) and yields to other threads until <paramref name="condition"/> holds;
    /// fails with <paramref name="timedOut"/> once <paramref name="timeout"/> has passed. The 1 ms pause only lets a background
    /// thread run between looks; correctness depends on the condition, never on the pause.
    /// </summary>
    public static void Until(Func<bool> condition, Action step, TimeSpan timeout, Func<string> timedOut)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed >= timeout)
            {
                Assert.Fail(timedOut());
            }

            step();
            SpinWait.SpinUntil(condition, TimeSpan.FromMilliseconds(1)); // lets a background thread run, returns as soon as it holds
        }
    }
}
