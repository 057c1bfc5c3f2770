namespace ClusterSync.Transport.Nats;

/// <summary>
/// How NATS endpoints are written. The local address names the server and this member's subject root,
/// <c>nats://host:port/clustersync.site.m1</c> (several servers: <c>nats://a:4222,nats://b:4222/root</c>);
/// a peer address is the peer's subject root (<c>clustersync.site.m2</c>), or a full address whose server part is ignored
/// (all members reach one NATS system: clusters, gateways and leaf nodes route between sites).
/// </summary>
internal static class NatsAddress
{
    public const string Scheme = "nats://";

    /// <summary>Splits a local address into the server URL list and the member's subject root.</summary>
    public static bool TryParseLocal(string text, out string url, out string root, out string error)
    {
        url = root = "";
        if (!text.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && !text.StartsWith("tls://", StringComparison.OrdinalIgnoreCase))
        {
            error = $"expected 'nats://host:port/<subject root>' (for example 'nats://127.0.0.1:4222/clustersync.site.m1'), found '{text}'";
            return false;
        }

        int slash = text.LastIndexOf('/');
        if (slash < text.IndexOf("://", StringComparison.Ordinal) + 3)
        {
            error = $"expected a subject root after the server, as in 'nats://127.0.0.1:4222/clustersync.site.m1', found '{text}'";
            return false;
        }

        url = text[..slash];
        return TryParseRoot(text[(slash + 1)..], out root, out error);
    }

    /// <summary>Reads a peer address: a subject root, or a full address whose root is taken.</summary>
    public static bool TryParsePeer(string text, out string root, out string error)
    {
        if (text.Contains("://", StringComparison.Ordinal))
        {
            return TryParseLocal(text, out _, out root, out error);
        }

        return TryParseRoot(text, out root, out error);
    }

    /// <summary>A subject root: dot-separated tokens of letters, digits, '-' and '_' (no wildcards, no spaces).</summary>
    public static bool TryParseRoot(string text, out string root, out string error)
    {
        root = text;
        error = "";
        if (text.Length == 0 || text.Length > 200)
        {
            error = $"expected a subject root of 1 to 200 characters like 'clustersync.site.m1', found '{text}'";
            return false;
        }

        foreach (var token in text.Split('.'))
        {
            if (token.Length == 0 || !token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                error = $"expected a subject root of dot-separated tokens (letters, digits, '-', '_'; no wildcards) like 'clustersync.site.m1', found '{text}'";
                return false;
            }
        }

        return true;
    }

    /// <summary>Subject on which <paramref name="to"/> receives datagrams from <paramref name="from"/>.</summary>
    public static string DatagramSubject(string to, string from) => $"{to}.d.{from}";

    /// <summary>Subject on which a member accepts stream opens.</summary>
    public static string StreamOpenSubject(string root) => $"{root}.s.open";

    /// <summary>Subject on which one side of one stream receives.</summary>
    public static string StreamSubject(string root, string streamId) => $"{root}.s.{streamId}";
}
