namespace ClusterSync.TestUtilities;

/// <summary>
/// The one condition wait of the tests: poll a condition until it holds, with an overall timeout (never a fixed
/// pause). The poll interval only decides how soon a wait notices; correctness never depends on it.
/// </summary>
public static class Wait
{
    /// <summary>Between two looks at the condition.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds; between looks runs <paramref name="whileWaiting"/> (which may
    /// fail the test, e.g. when a process exited). Fails naming <paramref name="what"/> and attaching
    /// <paramref name="logs"/> (the processes' output) once <paramref name="timeout"/> has passed.
    /// </summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, Func<string>? logs = null, Action? whileWaiting = null, TimeSpan? poll = null)
    {
        if (!await UntilAsync(condition, timeout, whileWaiting, poll).ConfigureAwait(false))
        {
            Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for {what}{(logs is null ? "" : ":\n" + logs())}");
        }
    }

    /// <inheritdoc cref="WaitUntilAsync(Func{Task{bool}}, string, TimeSpan, Func{string}?, Action?, TimeSpan?)"/>
    public static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan timeout, Func<string>? logs = null, Action? whileWaiting = null, TimeSpan? poll = null)
        => WaitUntilAsync(() => Task.FromResult(condition()), what, timeout, logs, whileWaiting, poll);

    /// <summary>True as soon as <paramref name="condition"/> holds; false if it still does not after <paramref name="timeout"/> (the caller decides what that means).</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Action? whileWaiting = null, TimeSpan? poll = null)
    {
        var clock = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(poll ?? Poll);
        while (clock.Elapsed < timeout)
        {
            if (await condition().ConfigureAwait(false))
            {
                return true;
            }

            whileWaiting?.Invoke();
            await timer.WaitForNextTickAsync().ConfigureAwait(false);
        }

        return await condition().ConfigureAwait(false);
    }

    /// <summary>Blocking form for in-process tests on dedicated threads: true as soon as <paramref name="condition"/> holds, false after <paramref name="timeout"/>.</summary>
    public static bool Until(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        using var tick = new ManualResetEventSlim();
        while (!condition())
        {
            if (clock.Elapsed >= timeout)
            {
                return condition();
            }

            tick.Wait(Poll);
        }

        return true;
    }
}
