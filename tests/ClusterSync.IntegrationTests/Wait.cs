using System.Diagnostics;

namespace ClusterSync.IntegrationTests;

/// <summary>The one condition-wait of this project: poll a condition until it holds, with an overall timeout (no fixed delays).</summary>
internal static class Wait
{
    /// <summary>Between two looks at the condition; correctness never depends on it, only the overall timeout bounds the wait.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    /// <summary>True as soon as <paramref name="condition"/> holds; false if it still does not after <paramref name="timeout"/>.</summary>
    public static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed >= timeout)
            {
                return condition();
            }

            Thread.Sleep(Poll);
        }

        return true;
    }

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds; between looks runs <paramref name="whileWaiting"/> (which may fail the test,
    /// e.g. when a node exited) and fails with <paramref name="timedOut"/> once <paramref name="timeout"/> has passed.
    /// </summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> timedOut, Action? whileWaiting = null, TimeSpan? poll = null)
    {
        var clock = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(poll ?? Poll);
        while (clock.Elapsed < timeout)
        {
            if (await condition().ConfigureAwait(false))
            {
                return;
            }

            whileWaiting?.Invoke();
            await timer.WaitForNextTickAsync().ConfigureAwait(false);
        }

        Assert.Fail(timedOut());
    }

    /// <inheritdoc cref="UntilAsync(Func{Task{bool}}, TimeSpan, Func{string}, Action?, TimeSpan?)"/>
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> timedOut, Action? whileWaiting = null, TimeSpan? poll = null)
        => UntilAsync(() => Task.FromResult(condition()), timeout, timedOut, whileWaiting, poll);
}
