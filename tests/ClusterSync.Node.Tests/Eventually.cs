using System.Diagnostics;

namespace ClusterSync.Node.Tests;

/// <summary>Waits on a condition with an overall timeout instead of a fixed delay (CI machines are loaded).</summary>
internal static class Eventually
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(10);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="what"/> once <paramref name="timeout"/> has passed.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, Func<string> what, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"not within {timeout.TotalSeconds:0.#} s: {what()}");
            }

            await Task.Delay(s_poll).ConfigureAwait(false);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan timeout) => WaitUntilAsync(condition, () => what, timeout);
}
