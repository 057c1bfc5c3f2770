using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace ClusterSync.Node.Control.Http;

/// <summary>
/// Who may do what on the control endpoint, decided before any route runs:
/// <list type="number">
/// <item><b>Host and Origin</b> (DNS rebinding, browser CSRF): a <c>Host</c> header, when present, must name a loopback
/// address, <c>localhost</c> or the bind address; an <c>Origin</c> header, when present, must be <c>http://</c> one of
/// those. Otherwise 403. A browser always sends both on a cross-site write; curl and our own clients send a loopback
/// Host.</item>
/// <item><b>Bearer token</b> (<c>Authorization: Bearer TOKEN</c>, compared in constant time): required for every
/// state-changing request (any method but GET and HEAD) and, with <see cref="RequireTokenForReads"/>, for reads too.
/// Missing or wrong: 401. With no token configured, state-changing requests are refused with 403 unless
/// <see cref="AllowUnauthenticated"/> is set explicitly.</item>
/// </list>
/// </summary>
internal sealed class ControlAccess
{
    private readonly byte[]? _tokenHash;
    private readonly HashSet<string> _hosts;

    /// <param name="hosts">More names a Host header may carry (a non-loopback endpoint: the host name, the interfaces' addresses).</param>
    public ControlAccess(string? token, bool requireTokenForReads = false, bool allowUnauthenticated = false, IPAddress? bindAddress = null,
        IReadOnlyCollection<string>? hosts = null)
    {
        _tokenHash = token is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
        RequireTokenForReads = requireTokenForReads;
        AllowUnauthenticated = allowUnauthenticated;
        _hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "localhost" };
        if (bindAddress is not null)
        {
            _hosts.Add(bindAddress.ToString());
        }

        _hosts.UnionWith(hosts ?? []);
    }

    /// <summary>Anything goes (a test server, or an endpoint nobody can reach but its owner).</summary>
    public static ControlAccess Open { get; } = new(null, allowUnauthenticated: true);

    public bool HasToken => _tokenHash is not null;

    public bool RequireTokenForReads { get; }

    public bool AllowUnauthenticated { get; }

    /// <summary>The refusal for a request (status and reason), or null when it may proceed to its route.</summary>
    public (int Status, string Reason)? Check(string method, string? host, string? origin, string? authorization)
    {
        if (host is not null && !IsAllowedHost(host))
        {
            return (403, $"forbidden: Host '{host}' is not this node's control endpoint (expected localhost, a loopback address or the bind address)\n");
        }

        if (origin is not null && !IsAllowedOrigin(origin))
        {
            return (403, $"forbidden: cross-origin request from '{origin}'\n");
        }

        bool writes = method is not ("GET" or "HEAD");
        if (!writes && !RequireTokenForReads)
        {
            return null;
        }

        if (_tokenHash is null)
        {
            return writes && !AllowUnauthenticated
                ? (403, "forbidden: state-changing requests need a token: set node.control.tokenFile (or node.control.allowUnauthenticated: true)\n")
                : null;
        }

        if (authorization is null || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return (401, "unauthorized: expected 'Authorization: Bearer TOKEN' (the token in node.control.tokenFile)\n");
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization.AsSpan(7).Trim().ToString()));
        return CryptographicOperations.FixedTimeEquals(presented, _tokenHash) ? null : (401, "unauthorized: wrong token\n");
    }

    /// <summary>A Host header value (<c>name[:port]</c>, <c>[v6]:port</c>) that names this endpoint.</summary>
    public bool IsAllowedHost(string host)
    {
        var name = host.Trim();
        if (name.StartsWith('['))
        {
            int close = name.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || (close + 1 < name.Length && !IsPort(name.AsSpan(close + 1))))
            {
                return false;
            }

            name = name[1..close];
        }
        else if (name.IndexOf(':', StringComparison.Ordinal) is var colon and >= 0)
        {
            if (!IsPort(name.AsSpan(colon)))
            {
                return false;
            }

            name = name[..colon];
        }

        if (name.Length == 0)
        {
            return false;
        }

        if (_hosts.Contains(name))
        {
            return true;
        }

        // A literal loopback address (127.0.0.0/8, ::1); never a name that merely resolves to one (DNS rebinding).
        return IPAddress.TryParse(name, out var address) && IPAddress.IsLoopback(address) && IsLiteral(name);
    }

    private bool IsAllowedOrigin(string origin)
        => origin.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && origin.Length > 7 && !origin.AsSpan(7).ContainsAny('/', '@')
            && IsAllowedHost(origin[7..]);

    private static bool IsPort(ReadOnlySpan<char> colonAndPort)
        => colonAndPort.Length is > 1 and <= 6 && colonAndPort[0] == ':' && ushort.TryParse(colonAndPort[1..], System.Globalization.NumberStyles.None, null, out _);

    // IPAddress.TryParse also takes "127.1" and "2130706433"; only dotted quads and colon forms count as literals.
    private static bool IsLiteral(string name) => name.Contains(':', StringComparison.Ordinal) || name.Count(c => c == '.') == 3;
}
