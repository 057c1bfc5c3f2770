using System.Net;

namespace ClusterSync.Node.Configuration;

/// <summary>
/// <c>node.control.address</c>: where the control endpoint listens. Loopback (the default, <c>127.0.0.1</c>) keeps the
/// endpoint's rules as they are. Any other address serves the network, so the endpoint fails closed there: it needs
/// <c>node.control.tokenFile</c> and <c>node.control.requireTokenForReads: true</c> (<c>/status</c> names the members,
/// their addresses and counters; <c>/ownership?connections=true</c> lists every connection), and
/// <c>allowUnauthenticated</c> is refused. A Prometheus server presents the token with
/// <c>authorization: { credentials_file: ... }</c>.
/// </summary>
internal static class ControlAddressValidator
{
    public const string DefaultAddress = "127.0.0.1";

    /// <summary>Checks the address and what a non-loopback address needs; returns the address (loopback when it is not valid).</summary>
    public static IPAddress Validate(ControlConfig control, ConfigurationErrors errors)
    {
        if (!TryParse(control.Address, out var address))
        {
            errors.Add("node.control.address", $"expected an IP address to listen on (127.0.0.1, the default; ::1; an address of this machine; 0.0.0.0 or :: for all), found '{control.Address}'");
            return IPAddress.Loopback;
        }

        if (control.Port == 0 || IPAddress.IsLoopback(address))
        {
            return address;
        }

        if (string.IsNullOrWhiteSpace(control.TokenFile))
        {
            errors.Add("node.control.tokenFile", $"node.control.address {control.Address} is not a loopback address: expected a token file (every request must present its token)");
        }

        if (!control.RequireTokenForReads)
        {
            errors.Add("node.control.requireTokenForReads", $"node.control.address {control.Address} is not a loopback address: expected true (reads such as /status and /ownership must present the token too)");
        }

        if (control.AllowUnauthenticated)
        {
            errors.Add("node.control.allowUnauthenticated", $"node.control.address {control.Address} is not a loopback address: expected false (no unauthenticated requests from the network)");
        }

        return address;
    }

    /// <summary>An IP address literal (dotted quad or IPv6; not the shorthands <c>127.1</c> or a bare number that IPAddress.TryParse also takes).</summary>
    public static bool TryParse(string? text, out IPAddress address)
    {
        address = IPAddress.Loopback;
        if (string.IsNullOrWhiteSpace(text) || !IPAddress.TryParse(text, out var parsed))
        {
            return false;
        }

        if (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && text.Count(c => c == '.') != 3)
        {
            return false;
        }

        address = parsed;
        return true;
    }
}
