using System.Runtime.InteropServices;

namespace ClusterSync.Cli;

/// <summary>
/// SIGTERM and SIGINT from the first line of <c>Main</c> for the commands that run a node: a signal that arrives before
/// System.CommandLine (and later the Generic Host) listen is not the runtime's default (terminate with 143) but a
/// cancellation the command sees when it starts, so a signal at any moment of start-up stops the node cleanly with
/// exit 0. Only a signal before the runtime runs <c>Main</c> at all still ends the process the default way.
/// </summary>
internal static class EarlySignals
{
    private static readonly CancellationTokenSource s_signalled = new();

    /// <summary>Cancelled by a SIGTERM or SIGINT received while <see cref="Listen"/>'s registration lives.</summary>
    public static CancellationToken Token => s_signalled.Token;

    /// <summary>Starts listening; dispose to stop (the default handling applies again).</summary>
    public static IDisposable? Listen()
    {
        if (OperatingSystem.IsWindows() || OperatingSystem.IsBrowser())
        {
            return null;
        }

        var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        return new Registrations(term, interrupt);
    }

    private static void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // no default termination: the command stops itself
        s_signalled.Cancel();
    }

    private sealed class Registrations(IDisposable term, IDisposable interrupt) : IDisposable
    {
        public void Dispose()
        {
            term.Dispose();
            interrupt.Dispose();
        }
    }
}
