using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ClusterSync.Node.Configuration;
using Microsoft.Extensions.Logging;

namespace ClusterSync.Node.Runtime;

/// <summary>
/// The built-in virtual addresses (<c>hooks.virtualAddresses</c>): added with <c>ip address add</c> once this member is
/// Active and its data-plane commit ended, removed with <c>ip address del</c> when it stops being Active (Standby,
/// Maintenance, a fault, a clean stop) and, in case a killed process left one behind, when the node starts. Taking an
/// address announces it: IPv4 with gratuitous ARP (<c>arping -U</c> of iputils, Debian package <c>iputils-arping</c>),
/// IPv6 with unsolicited neighbour advertisements (override flag, to ff02::1, hop limit 255) sent from a raw ICMPv6
/// socket of our own (the kernel fills in the checksum), after adding the address with <c>nodad</c> (a peer killed while
/// holding it still answers duplicate address detection). Both need CAP_NET_ADMIN / CAP_NET_RAW, as <c>ip</c> does.
/// </summary>
internal sealed partial class StateHooks
{
    /// <summary>Seconds between two announcements of one address (arping's own interval; past the kernel's 1 s ARP lock time).</summary>
    private const double AnnouncementInterval = 1;

    private bool _addressesHeld;
    private Task _announcing = Task.CompletedTask;

    private async Task AddAddressesAsync(long commitEndedUnixMs)
    {
        var announcements = new List<Task>();
        foreach (var v in _config.VirtualAddresses)
        {
            if (!v.TryParse(out var address, out int prefix))
            {
                continue; // refused by validation
            }

            bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
            string cidr = $"{address}/{prefix.ToString(CultureInfo.InvariantCulture)}";
            string[] args = v6 ? ["address", "add", cidr, "dev", v.Interface, "nodad"] : ["address", "add", cidr, "dev", v.Interface];
            var (exit, output, ms, _) = await RunToolAsync(_config.Ip, args).ConfigureAwait(false);
            if (exit != 0 && !output.Contains("File exists", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _hookFailures);
                Log.AddressNotAdded(_logger, cidr, v.Interface, exit, output);
                continue;
            }

            _addressesHeld = true;
            Log.AddressAdded(_logger, _member, cidr, v.Interface, _time.GetUtcNow().ToUnixTimeMilliseconds(), commitEndedUnixMs, ms);
            if (_config.Announcements > 0)
            {
                announcements.Add(v6 ? AdvertiseAsync(address, cidr, v.Interface) : GratuitousArpAsync(address, cidr, v.Interface));
            }
        }

        // The announcements (about a second) run beside onActive; the next job waits for them (RunJobAsync).
        _announcing = Task.WhenAll(announcements);
    }

    /// <summary>Gratuitous ARP requests (<c>arping -U</c>), which update every neighbour's cache entry for the address.</summary>
    private async Task GratuitousArpAsync(IPAddress address, string cidr, string interfaceName)
    {
        var (exit, output, _, _) = await RunToolAsync(_config.Arping,
        [
            "-U", "-c", _config.Announcements.ToString(CultureInfo.InvariantCulture), "-I", interfaceName, address.ToString(),
        ]).ConfigureAwait(false);
        if (exit == 0)
        {
            Log.Announced(_logger, cidr, interfaceName, "gratuitous ARP requests", _config.Announcements);
        }
        else
        {
            Log.NotAnnounced(_logger, cidr, interfaceName, $"{_config.Arping} exited with {exit?.ToString(CultureInfo.InvariantCulture) ?? "nothing (not started)"}: {output}");
        }
    }

    /// <summary>Unsolicited neighbour advertisements, <see cref="AnnouncementInterval"/> apart.</summary>
    private async Task AdvertiseAsync(IPAddress address, string cidr, string interfaceName)
    {
        for (int i = 0; i < _config.Announcements; i++)
        {
            if (i > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(AnnouncementInterval), _time).ConfigureAwait(false);
            }

            if (SendNeighbourAdvertisement(address, interfaceName) is { } error)
            {
                Log.NotAnnounced(_logger, cidr, interfaceName, error);
                return;
            }
        }

        Log.Announced(_logger, cidr, interfaceName, "unsolicited neighbour advertisements", _config.Announcements);
    }

    private async Task RemoveAddressesAsync(string why)
    {
        bool quiet = !_addressesHeld; // at start (or when never taken): an absent address is the normal case
        foreach (var v in _config.VirtualAddresses)
        {
            if (!v.TryParse(out var address, out int prefix))
            {
                continue;
            }

            string cidr = $"{address}/{prefix.ToString(CultureInfo.InvariantCulture)}";
            var (exit, output, _, _) = await RunToolAsync(_config.Ip, ["address", "del", cidr, "dev", v.Interface]).ConfigureAwait(false);
            if (exit == 0)
            {
                Log.AddressRemoved(_logger, _member, cidr, v.Interface, _time.GetUtcNow().ToUnixTimeMilliseconds(), why);
            }
            else if (!quiet && !output.Contains("Cannot assign requested address", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _hookFailures);
                Log.AddressNotRemoved(_logger, cidr, v.Interface, exit, output);
            }
        }

        _addressesHeld = false;
    }

    private Task<(int? Exit, string Output, double Milliseconds, bool TimedOut)> RunToolAsync(string tool, string[] args)
    {
        var psi = new ProcessStartInfo(tool)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return RunProcessAsync(psi, _config.Timeout, tool);
    }

    /// <summary>
    /// An unsolicited neighbour advertisement (RFC 4861 7.2.6) for <paramref name="target"/>: solicited flag off, override
    /// flag on, the interface's link-layer address as the target link-layer option, to all nodes (ff02::1), hop limit 255.
    /// Returns null when sent, else why not.
    /// </summary>
    private static string? SendNeighbourAdvertisement(IPAddress target, string interfaceName)
    {
        byte[] mac;
        int index;
        try
        {
            mac = Convert.FromHexString(File.ReadAllText($"/sys/class/net/{interfaceName}/address").Trim().Replace(":", "", StringComparison.Ordinal));
            index = int.Parse(File.ReadAllText($"/sys/class/net/{interfaceName}/ifindex").Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return $"cannot read the interface's link-layer address: {ex.Message}";
        }

        if (mac.Length != 6)
        {
            return $"interface {interfaceName} has no Ethernet address";
        }

        var packet = new byte[32];
        packet[0] = 136; // neighbour advertisement; code 0, checksum (2..3) filled in by the kernel
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(4), 0x2000_0000u); // override
        target.TryWriteBytes(packet.AsSpan(8, 16), out _);
        packet[24] = 2; // target link-layer address option, 1 unit of 8 bytes
        packet[25] = 1;
        mac.CopyTo(packet, 26);
        try
        {
            using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6);
            socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastTimeToLive, 255);
            socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastInterface, index);
            socket.Bind(new IPEndPoint(target, 0));
            var allNodes = new IPEndPoint(new IPAddress(IPAddress.Parse("ff02::1").GetAddressBytes(), index), 0);
            socket.SendTo(packet, allNodes);
            return null;
        }
        catch (SocketException ex)
        {
            return $"raw ICMPv6 socket: {ex.Message} (needs CAP_NET_RAW)";
        }
    }

    private static partial class Log
    {
        [LoggerMessage(4070, LogLevel.Warning, "Member {Member}: virtual address {Address} added on {Device} at {AddedUnixMs} (Unix ms), after the data-plane commit ended at {CommitEndedUnixMs} ({Milliseconds:F0} ms)")]
        public static partial void AddressAdded(ILogger logger, byte member, string address, string device, long addedUnixMs, long commitEndedUnixMs, double milliseconds);

        [LoggerMessage(4071, LogLevel.Warning, "Member {Member}: virtual address {Address} removed from {Device} at {RemovedUnixMs} (Unix ms): {Why}")]
        public static partial void AddressRemoved(ILogger logger, byte member, string address, string device, long removedUnixMs, string why);

        [LoggerMessage(4072, LogLevel.Error, "Virtual address {Address} on {Device}: ip address add failed ({Exit}): {Output}")]
        public static partial void AddressNotAdded(ILogger logger, string address, string device, int? exit, string output);

        [LoggerMessage(4073, LogLevel.Error, "Virtual address {Address} on {Device}: ip address del failed ({Exit}): {Output}")]
        public static partial void AddressNotRemoved(ILogger logger, string address, string device, int? exit, string output);

        [LoggerMessage(4074, LogLevel.Information, "Virtual address {Address} on {Device}: announced with {Count} {What}")]
        private static partial void AnnouncedCore(ILogger logger, string address, string device, int count, string what);

        [LoggerMessage(4075, LogLevel.Error, "Virtual address {Address} on {Device}: not announced: {Error}")]
        public static partial void NotAnnounced(ILogger logger, string address, string device, string error);

        public static void Announced(ILogger logger, string address, string device, string what, int count) => AnnouncedCore(logger, address, device, count, what);
    }
}
