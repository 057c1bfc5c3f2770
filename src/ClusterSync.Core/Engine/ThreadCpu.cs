using System.Globalization;
using System.Runtime.InteropServices;

namespace ClusterSync.Engine;

/// <summary>Per-OS-thread CPU time on Linux (from /proc), so benchmarks can attribute CPU to each member's threads.</summary>
public static partial class ThreadCpu
{
    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    /// <summary>The calling thread's kernel id, or 0 where it cannot be had.</summary>
    public static int CurrentThreadId()
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }

        try
        {
            return GetTid();
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>User + system CPU time of thread <paramref name="tid"/> of this process (zero when unknown or gone).</summary>
    public static TimeSpan CpuTime(int tid)
    {
        if (tid == 0)
        {
            return TimeSpan.Zero;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
            // Fields after the parenthesised command name: state is field 3; utime 14, stime 15.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long ticks = long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0);
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return TimeSpan.Zero;
        }
    }
}
