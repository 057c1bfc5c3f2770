using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// The <c>hooks</c> section: what runs when this member's state changes, so that traffic follows the Active
/// (docs/operations.md). Commands are argument vectors (no shell): the first element an executable (absolute, or
/// relative to the configuration file), the others its arguments, in which <c>{state}</c>, <c>{previous}</c>,
/// <c>{reason}</c> and <c>{member}</c> are replaced; the same values are in the environment
/// (<c>CLUSTERSYNC_STATE</c>, ...). Hooks run one at a time, in the order of the state changes, off the control thread;
/// <c>onActive</c> runs only once the failover commit into the data plane has ended.
/// </summary>
public sealed record HooksConfig
{
    /// <summary>Run when this member becomes Active, after its replica was committed into the data plane.</summary>
    public IReadOnlyList<string> OnActive { get; init; } = [];

    /// <summary>Run when this member becomes Standby or Maintenance, and when it stops cleanly (state Down).</summary>
    public IReadOnlyList<string> OnStandby { get; init; } = [];

    /// <summary>Run when this member can no longer synchronize (its engine stopped or its sync transport failed).</summary>
    public IReadOnlyList<string> OnFault { get; init; } = [];

    /// <summary>The longest a hook may run; past it the hook (and what it started) is killed and the timeout logged.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Addresses this member holds only while Active (<c>ip address add</c> after the failover commit, <c>del</c> when it
    /// stops being Active and at a clean stop), announced with gratuitous ARP (IPv4) or an unsolicited neighbour
    /// advertisement (IPv6).
    /// </summary>
    public IReadOnlyList<VirtualAddressConfig> VirtualAddresses { get; init; } = [];

    /// <summary>Gratuitous ARP requests (<c>arping -U -c N</c>) or unsolicited neighbour advertisements sent per address on taking it, one a second.</summary>
    public int Announcements { get; init; } = 3;

    /// <summary>The <c>ip</c> program (iproute2).</summary>
    public string Ip { get; init; } = "ip";

    /// <summary>The <c>arping</c> program of iputils (Debian package <c>iputils-arping</c>), for IPv4 virtual addresses.</summary>
    public string Arping { get; init; } = "arping";

    /// <summary>True when anything is configured.</summary>
    public bool HasAny() => OnActive.Count > 0 || OnStandby.Count > 0 || OnFault.Count > 0 || VirtualAddresses.Count > 0;

    /// <summary>A hook's executable as the node runs it: absolute, or relative to the configuration file's directory.</summary>
    public static string ResolveExecutable(string configFile, string executable)
        => Path.IsPathRooted(executable) ? executable : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(configFile) ?? ".", executable));
}

/// <summary>One virtual address: <c>10.0.0.100/24</c> or <c>fd00::100/64</c> on an interface of this machine.</summary>
public sealed record VirtualAddressConfig
{
    public string Address { get; init; } = "";

    public string Interface { get; init; } = "";

    /// <summary>Parses <see cref="Address"/> (address and prefix length); false when malformed.</summary>
    public bool TryParse(out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = 0;
        int slash = Address.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !IPAddress.TryParse(Address.AsSpan(0, slash), out var parsed)
            || !int.TryParse(Address.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix))
        {
            return false;
        }

        address = parsed;
        bool v4 = parsed.AddressFamily == AddressFamily.InterNetwork;
        return prefix >= 1 && prefix <= (v4 ? 32 : 128) && (v4 || parsed.ScopeId == 0); // (ScopeId throws for IPv4)
    }
}

/// <summary>The <c>hooks</c> section: executables that exist, a sane timeout, well-formed virtual addresses. Collects every error.</summary>
internal static class HooksValidator
{
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromMinutes(10);

    public static void Validate(NodeConfig c, string file, ConfigurationErrors errors)
    {
        var h = c.Hooks;
        Command(h.OnActive, "hooks.onActive", file, errors);
        Command(h.OnStandby, "hooks.onStandby", file, errors);
        Command(h.OnFault, "hooks.onFault", file, errors);
        if (h.Timeout < TimeSpan.FromMilliseconds(100) || h.Timeout > MaxTimeout)
        {
            errors.Add("hooks.timeout", $"expected a duration from 100ms to 10m, found {h.Timeout}");
        }

        if (h.Announcements is < 0 or > 20)
        {
            errors.Add("hooks.announcements", $"expected 0 to 20, found {h.Announcements}");
        }

        if (h.VirtualAddresses.Count > 0)
        {
            if (string.IsNullOrWhiteSpace(h.Ip))
            {
                errors.Add("hooks.ip", "expected the ip program (iproute2), for example 'ip'");
            }

            if (string.IsNullOrWhiteSpace(h.Arping))
            {
                errors.Add("hooks.arping", "expected the arping program of iputils, for example 'arping'");
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < h.VirtualAddresses.Count; i++)
        {
            var v = h.VirtualAddresses[i];
            string path = $"hooks.virtualAddresses[{i}]";
            if (!v.TryParse(out var address, out _))
            {
                errors.Add($"{path}.address", $"expected an address with its prefix length, like 10.0.0.100/24 or fd00::100/64, found '{v.Address}'");
            }
            else if (!seen.Add(address.ToString()))
            {
                errors.Add($"{path}.address", $"expected each address once, found {address} again");
            }

            if (v.Interface.Length is 0 or > 15 || v.Interface.Any(ch => ch is '/' or ':' || char.IsWhiteSpace(ch)) || v.Interface is "." or "..")
            {
                errors.Add($"{path}.interface", $"expected a network interface name (1 to 15 characters, no '/', ':' or space), found '{v.Interface}'");
            }
        }
    }

    private static void Command(IReadOnlyList<string> command, string path, string file, ConfigurationErrors errors)
    {
        if (command.Count == 0)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(command[0]))
        {
            errors.Add($"{path}[0]", "expected an executable file (absolute, or relative to the configuration file), found an empty string");
            return;
        }

        string resolved = HooksConfig.ResolveExecutable(file, command[0]);
        if (!File.Exists(resolved))
        {
            errors.Add($"{path}[0]", $"expected an executable file (absolute, or relative to the configuration file), found no file at {resolved}");
        }
        else if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(resolved) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            errors.Add($"{path}[0]", $"expected an executable file, found {resolved} without execute permission (chmod +x)");
        }
    }
}
