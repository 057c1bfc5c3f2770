using System.Diagnostics;

namespace ClusterSync.EndToEndTests;

/// <summary>The one condition-wait of this project: poll a condition until it holds, with an overall timeout (no fixed delays).</summary>
internal static class Eventually
{
    /// <summary>Between two looks at the condition; correctness never depends on it, only the overall timeout bounds the wait.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds (true) or <paramref name="timeout"/> has passed (false); between looks runs
    /// <paramref name="whileWaiting"/>, which may fail the test (e.g. when a process exited).
    /// </summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Action? whileWaiting = null, TimeSpan? poll = null)
    {
        var clock = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(poll ?? Poll);
        while (clock.Elapsed < timeout)
        {
            if (await condition())
            {
                return true;
            }

            whileWaiting?.Invoke();
            await timer.WaitForNextTickAsync();
        }

        return false;
    }
}
