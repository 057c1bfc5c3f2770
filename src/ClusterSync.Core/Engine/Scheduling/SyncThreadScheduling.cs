using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Engine.Scheduling;

/// <summary>The Linux scheduling policy of the engine's sync threads.</summary>
public enum SyncSchedulingPolicy
{
    /// <summary>The default time-sharing policy (<c>SCHED_OTHER</c>), optionally at a <see cref="SyncThreadScheduling.Nice"/> value.</summary>
    Other = 0,

    /// <summary><c>SCHED_FIFO</c>: a woken sync thread preempts every time-sharing thread at once.</summary>
    Fifo = 1,

    /// <summary><c>SCHED_RR</c>: as FIFO, with round-robin time slices among real-time threads of equal priority.</summary>
    RoundRobin = 2,
}

/// <summary>
/// How the engine's sync threads (sender, receiver, heartbeat, control tick, apply; each sync link's receive thread on a
/// <see cref="Transport.MultiLinkChannel"/>) are scheduled: conntrackd's
/// <c>Scheduler { Type FIFO; Priority N }</c> and <c>NiceValue</c>. The default leaves them as every other thread.
/// A real-time policy or a negative nice value needs root or <c>CAP_SYS_NICE</c> (or a matching <c>RLIMIT_RTPRIO</c> /
/// <c>RLIMIT_NICE</c>) and Linux; <see cref="CheckAllowed"/> says why not before anything starts.
/// </summary>
public sealed partial record SyncThreadScheduling
{
    /// <summary>Leave the threads alone.</summary>
    public static readonly SyncThreadScheduling Default = new();

    public SyncSchedulingPolicy Policy { get; init; } = SyncSchedulingPolicy.Other;

    /// <summary>Real-time priority, 1 (lowest) to 99, for <see cref="SyncSchedulingPolicy.Fifo"/> and <see cref="SyncSchedulingPolicy.RoundRobin"/>.</summary>
    public int Priority { get; init; }

    /// <summary>Nice value, -20 (highest) to 19, for <see cref="SyncSchedulingPolicy.Other"/>; 0 leaves it.</summary>
    public int Nice { get; init; }

    /// <summary>True when nothing is to be changed.</summary>
    public bool IsDefault => Policy == SyncSchedulingPolicy.Other && Nice == 0;

    /// <summary>The name of the policy as configured: <c>other</c>, <c>fifo</c>, <c>rr</c>.</summary>
    public static string NameOf(SyncSchedulingPolicy policy) => policy switch
    {
        SyncSchedulingPolicy.Fifo => "fifo",
        SyncSchedulingPolicy.RoundRobin => "rr",
        _ => "other",
    };

    /// <summary>The policy of a configured name (<c>other</c>, <c>fifo</c>, <c>rr</c>; case-insensitive), or null.</summary>
    public static SyncSchedulingPolicy? Parse(string? name) => name?.ToLowerInvariant() switch
    {
        "other" => SyncSchedulingPolicy.Other,
        "fifo" => SyncSchedulingPolicy.Fifo,
        "rr" => SyncSchedulingPolicy.RoundRobin,
        _ => null,
    };

    /// <summary>Range errors, each <c>path.field: expected</c> (the platform and privileges are <see cref="CheckAllowed"/>'s).</summary>
    public IEnumerable<string> Validate(string path)
    {
        if (Policy is SyncSchedulingPolicy.Fifo or SyncSchedulingPolicy.RoundRobin)
        {
            if (Priority is < 1 or > 99)
            {
                yield return $"{path}.priority: expected 1 to 99 with policy '{NameOf(Policy)}', found {Priority}";
            }

            if (Nice != 0)
            {
                yield return $"{path}.nice: expected 0 (no setting) with policy '{NameOf(Policy)}' (a real-time thread has no nice value), found {Nice}";
            }
        }
        else
        {
            if (Priority != 0)
            {
                yield return $"{path}.priority: expected 0 (no setting) with policy 'other' (a priority needs 'fifo' or 'rr'), found {Priority}";
            }

            if (Nice is < -20 or > 19)
            {
                yield return $"{path}.nice: expected -20 to 19, found {Nice}";
            }
        }
    }

    /// <summary>
    /// Why this process may not apply the setting (as <c>path.field: expected</c>), or null when it may: a real-time
    /// policy or a negative nice value needs Linux and root, <c>CAP_SYS_NICE</c>, or a resource limit that allows it.
    /// </summary>
    public string? CheckAllowed(string path)
    {
        if (IsDefault || Nice > 0)
        {
            return null; // nothing to do, or a lower priority: every process may
        }

        bool realTime = Policy != SyncSchedulingPolicy.Other;
        string what = realTime ? $"policy '{NameOf(Policy)}'" : $"nice {Nice}";
        string field = realTime ? $"{path}.policy" : $"{path}.nice";
        if (!OperatingSystem.IsLinux())
        {
            return $"{field}: {what} is supported on Linux only; expected policy 'other' with nice 0 or above here";
        }

        if (SchedulingPrivileges.MayRaise(realTime, realTime ? Priority : Nice))
        {
            return null;
        }

        return $"{field}: {what} needs root or CAP_SYS_NICE (this process lacks CAP_SYS_NICE, and {(realTime ? "RLIMIT_RTPRIO" : "RLIMIT_NICE")} does not allow it); " +
               "expected policy 'other' with nice 0 or above, or run the node as root or with CAP_SYS_NICE (systemd: AmbientCapabilities=CAP_SYS_NICE)";
    }

    /// <summary>
    /// A time slice the sync threads may ask the kernel for under the default policy (Linux 6.12+, EEVDF: a fair thread
    /// may request a slice of its own, no privilege needed): a short one gives a woken sync thread an early virtual
    /// deadline, so it preempts a thread that runs a longer slice instead of waiting for that slice to end. Off by
    /// default (0: the kernel's own, 0.75–3 ms): on the loaded 2-vCPU VM 100 µs cost the busy threads CPU share at the
    /// maximum rate and showed no measured gain at 100,000/s (docs/benchmarks.md). <c>CLUSTERSYNC_SYNC_SLICE_US=N</c>
    /// (100 to 100,000) asks for one, to measure on another machine. Older kernels accept and ignore it.
    /// </summary>
    internal static readonly int SliceMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable("CLUSTERSYNC_SYNC_SLICE_US"), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int us) && us is >= 0 and <= 100_000
            ? us
            : 0;

    /// <summary>
    /// Applies the setting to the calling thread (Linux: <c>sched_setscheduler</c>, or <c>sched_setattr</c> with the
    /// short slice and the nice value, on its thread id). Returns 0, or the errno of the refusal.
    /// </summary>
    public int ApplyToCurrentThread()
    {
        if (!OperatingSystem.IsLinux())
        {
            return IsDefault ? 0 : SchedulingPrivileges.Enosys;
        }

        if (Policy != SyncSchedulingPolicy.Other)
        {
            return SchedulingPrivileges.SetRealTime(Policy == SyncSchedulingPolicy.Fifo ? SchedulingPrivileges.SchedFifo : SchedulingPrivileges.SchedRr, Priority);
        }

        if (SliceMicroseconds > 0)
        {
            int errno = SchedulingPrivileges.SetFair(Nice, SliceMicroseconds);
            if (errno == 0 || Nice == 0)
            {
                return IsDefault ? 0 : errno; // the slice is a request: a kernel without sched_setattr keeps its default
            }
        }

        return Nice == 0 ? 0 : SchedulingPrivileges.SetNice(Nice);
    }

    /// <summary>How it reads in a log line: <c>SCHED_FIFO priority 10</c>, <c>SCHED_OTHER nice -5</c>.</summary>
    public override string ToString() => Policy switch
    {
        SyncSchedulingPolicy.Fifo => $"SCHED_FIFO priority {Priority}",
        SyncSchedulingPolicy.RoundRobin => $"SCHED_RR priority {Priority}",
        _ => Nice == 0 ? "SCHED_OTHER" : $"SCHED_OTHER nice {Nice}",
    };

    /// <summary>Applies <paramref name="scheduling"/> to the calling thread and logs the outcome (one line per thread).</summary>
    internal static void ApplyAndLog(SyncThreadScheduling scheduling, ILogger logger, byte member, string thread)
    {
        int errno = scheduling.ApplyToCurrentThread();
        if (scheduling.IsDefault)
        {
            return; // the short slice alone: a request, not logged
        }

        if (errno == 0)
        {
            Log.Applied(logger, member, thread, ThreadCpu.CurrentThreadId(), scheduling.ToString());
        }
        else
        {
            Log.Refused(logger, member, thread, scheduling.ToString(), errno, Marshal.GetPInvokeErrorMessage(errno));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1170, LogLevel.Information, "Member {Member}: sync thread {Thread} (tid {Tid}) runs {Scheduling}")]
        public static partial void Applied(ILogger logger, byte member, string thread, int tid, string scheduling);

        [LoggerMessage(1171, LogLevel.Error, "Member {Member}: the kernel refused {Scheduling} for sync thread {Thread} (errno {Errno}: {Message}); it keeps the default scheduling")]
        public static partial void Refused(ILogger logger, byte member, string thread, string scheduling, int errno, string message);
    }
}

/// <summary>The Linux calls behind <see cref="SyncThreadScheduling"/>.</summary>
internal static unsafe partial class SchedulingPrivileges
{
    public const int SchedOther = 0;
    public const int SchedFifo = 1;
    public const int SchedRr = 2;
    public const int Enosys = 38;
    private const int CapSysNice = 23;
    private const int RlimitNice = 13;
    private const int RlimitRtprio = 14;
    private const int PrioProcess = 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct SchedParam
    {
        public int Priority;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, SchedParam* param);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int priority);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, RLimit* limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct SchedAttr
    {
        public uint Size;
        public uint Policy;
        public ulong Flags;
        public int Nice;
        public uint Priority;
        public ulong Runtime;
        public ulong Deadline;
        public ulong Period;
        public uint UtilMin;
        public uint UtilMax;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int tid, SchedAttr* attr, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getpriority(int which, int who);

    /// <summary>
    /// sched_setattr(SCHED_OTHER) on the calling thread: <paramref name="nice"/> (0: the thread's current nice value,
    /// so an unprivileged thread under a nice parent is not refused) and a slice of <paramref name="sliceMicros"/>
    /// (honoured by Linux 6.12+). 0 or the errno (ENOSYS where the call does not exist).
    /// </summary>
    public static int SetFair(int nice, int sliceMicros)
    {
        long number = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 314,
            Architecture.Arm64 => 274,
            _ => -1,
        };
        if (number < 0)
        {
            return Enosys;
        }

        int tid = ThreadCpu.CurrentThreadId();
        if (nice == 0)
        {
            Marshal.SetLastPInvokeError(0);
            int current = getpriority(PrioProcess, tid);
            nice = current == -1 && Marshal.GetLastPInvokeError() != 0 ? 0 : current;
        }

        var attr = new SchedAttr { Size = (uint)sizeof(SchedAttr), Policy = SchedOther, Nice = nice, Runtime = (ulong)sliceMicros * 1000 };
        return syscall(number, tid, &attr, 0) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>sched_setscheduler on the calling thread's id; 0 or the errno.</summary>
    public static int SetRealTime(int policy, int priority)
    {
        var param = new SchedParam { Priority = priority };
        int tid = ThreadCpu.CurrentThreadId();
        return sched_setscheduler(tid, policy, &param) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>setpriority(PRIO_PROCESS, tid): on Linux a thread id sets that thread's nice value only; 0 or the errno.</summary>
    public static int SetNice(int nice)
    {
        int tid = ThreadCpu.CurrentThreadId();
        return setpriority(PrioProcess, tid, nice) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>
    /// CAP_SYS_NICE in the effective set (root has it, unless it was dropped), or the resource limit that allows
    /// <paramref name="value"/>: what the kernel itself checks.
    /// </summary>
    public static bool MayRaise(bool realTime, int value)
    {
        try
        {
            if (HasCapSysNice())
            {
                return true;
            }

            RLimit limit;
            if (getrlimit(realTime ? RlimitRtprio : RlimitNice, &limit) != 0)
            {
                return false;
            }

            // RLIMIT_RTPRIO: the highest real-time priority; RLIMIT_NICE: 20 - the lowest nice value allowed.
            return realTime ? limit.Current >= (ulong)value : limit.Current >= (ulong)(20 - value);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private static bool HasCapSysNice()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    ulong caps = Convert.ToUInt64(line["CapEff:".Length..].Trim(), 16);
                    return (caps & (1UL << CapSysNice)) != 0;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
        }

        return false;
    }
}
