using System.Runtime.InteropServices;

namespace ClusterSync.Table;

/// <summary>
/// Asks Linux to back the connection table's large arrays with transparent huge pages (2 MiB) where it can: a hint
/// (<c>madvise(MADV_HUGEPAGE)</c>), nothing else changes. A table of millions of entries is read at random places; with
/// 4 KiB pages nearly every lookup also misses the TLB (in a virtual machine a two-level page walk), and filling a fresh
/// table takes a page fault per 33 slots (a full sync into an empty joiner: ~30,000 faults per million entries). With
/// huge pages one TLB entry and one fault cover 2 MiB. Where transparent huge pages are off (<c>never</c>), not Linux, or
/// <c>CLUSTERSYNC_TABLE_HUGEPAGES=0</c> (for comparisons), the table keeps ordinary pages.
/// </summary>
internal static unsafe partial class HugePages
{
    private const int MadvHugepage = 14;
    private const nuint HugePageSize = 2 * 1024 * 1024;

    private static readonly bool s_enabled = OperatingSystem.IsLinux()
        && Environment.GetEnvironmentVariable("CLUSTERSYNC_TABLE_HUGEPAGES") != "0";

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* address, nuint length, int advice);

    /// <summary>
    /// Advises huge pages for the whole 2 MiB-aligned part of <paramref name="array"/>'s memory (arrays under 4 MiB are
    /// left alone). Returns true when the kernel took the advice.
    /// </summary>
    public static bool Advise<T>(T[] array)
        where T : unmanaged
    {
        nuint bytes = (nuint)array.Length * (nuint)sizeof(T);
        if (!s_enabled || bytes < 2 * HugePageSize)
        {
            return false;
        }

        fixed (T* data = array)
        {
            nuint start = (nuint)data;
            nuint first = (start + HugePageSize - 1) & ~(HugePageSize - 1);
            nuint end = (start + bytes) & ~(HugePageSize - 1);
            return end > first && Madvise((void*)first, end - first, MadvHugepage) == 0;
        }
    }
}
