using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ClusterSync.Node.Configuration;

namespace ClusterSync.Cli.Commands;

/// <summary>
/// The CLI's one client of a running node's control endpoint (<c>status</c>, <c>admin</c>, <c>telemetry export
/// --endpoint</c>): the <c>--endpoint</c> URL (http or https), the bearer token of <c>--token-file</c>, the roots of
/// <c>--ca-file</c> for an https endpoint, the <c>--timeout</c>; and how failures end a command. Bad options are one
/// <see cref="ConfigurationException"/> naming every bad option (exit 2); a node that cannot be reached, or that
/// refuses the request, is one line on stderr naming the URL (exit 1).
/// </summary>
internal sealed class ControlClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string? _token;
    private readonly double? _timeoutSeconds;

    private ControlClient(Uri baseUri, string? token, X509Certificate2Collection? trusted, double? timeoutSeconds)
    {
        BaseUri = baseUri;
        _token = token;
        _timeoutSeconds = timeoutSeconds;
        _http = new HttpClient(TrustingHandler(trusted))
        {
            Timeout = timeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>The default <c>--endpoint</c>: the node's control port on loopback.</summary>
    public static string DefaultEndpoint => $"http://127.0.0.1:{ControlConfig.DefaultPort}";

    public Uri BaseUri { get; }

    /// <summary>
    /// Checks the options and builds the client; throws <see cref="ConfigurationException"/> naming each bad option
    /// (<paramref name="timeoutSeconds"/> null: no timeout, for an answer of any length).
    /// </summary>
    public static ControlClient Open(string endpoint, string? tokenFile, string? caFile, double? timeoutSeconds)
    {
        var errors = new ConfigurationErrors();
        string? token = null;
        if (tokenFile is not null)
        {
            try
            {
                token = ControlTokenFile.Load(Path.GetFullPath(tokenFile));
            }
            catch (ConfigurationException ex)
            {
                errors.Add("--token-file", ex);
            }
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttp && baseUri.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add("--endpoint", $"expected an http or https URL like {DefaultEndpoint}, found '{endpoint}'");
        }

        var trusted = caFile is null ? null : LoadCertificates(caFile, errors);
        if (timeoutSeconds is { } t && !(t > 0 && t <= 300))
        {
            errors.Add("--timeout", $"expected seconds in (0, 300], found {t}");
        }

        errors.ThrowIfAny();
        return new ControlClient(baseUri!, token, trusted, timeoutSeconds);
    }

    public Uri Url(string pathAndQuery) => new(BaseUri, pathAndQuery);

    /// <summary>
    /// Sends the request and reads the whole answer; null when the node cannot be reached (one line on stderr: the
    /// caller exits with <see cref="CommandLine.Failure"/>).
    /// </summary>
    public async Task<ControlAnswer?> SendAsync(HttpMethod method, string pathAndQuery, CancellationToken cancellationToken)
    {
        var url = Url(pathAndQuery);
        try
        {
            using var request = Request(method, url);
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return new ControlAnswer(url, (int)response.StatusCode, response.ReasonPhrase, body);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            await UnreachableAsync(url, ex).ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>
    /// GET with the answer's body left to stream (an export of any length); a refusal is read whole. Null when the node
    /// cannot be reached (one line on stderr).
    /// </summary>
    public async Task<(HttpResponseMessage? Streaming, ControlAnswer? Refused)> GetStreamingAsync(string pathAndQuery, CancellationToken cancellationToken)
    {
        var url = Url(pathAndQuery);
        HttpResponseMessage? response = null;
        try
        {
            using var request = Request(HttpMethod.Get, url);
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return (response, null);
            }

            using (response)
            {
                string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                return (null, new ControlAnswer(url, (int)response.StatusCode, response.ReasonPhrase, body));
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            response?.Dispose();
            await UnreachableAsync(url, ex).ConfigureAwait(false);
            return (null, null);
        }
    }

    /// <summary>The one line for a node that does not answer (refused, reset, TLS refused, or silent past the timeout).</summary>
    public Task UnreachableAsync(Uri url, Exception ex)
    {
        var why = ex is TaskCanceledException && _timeoutSeconds is { } s ? $"no answer within {s} s" : ex.Message;
        return Console.Error.WriteLineAsync($"clustersync: cannot reach the node at {url}: {why} (is 'clustersync node' running with this node.control.port?)");
    }

    public void Dispose() => _http.Dispose();

    private HttpRequestMessage Request(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        if (_token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }

        return request;
    }

    private static X509Certificate2Collection? LoadCertificates(string caFile, ConfigurationErrors errors)
    {
        var trusted = new X509Certificate2Collection();
        try
        {
            trusted.ImportFromPemFile(PathOptions.InputFile("--ca-file", caFile));
        }
        catch (ConfigurationException ex)
        {
            errors.AddRange(ex.Errors);
            return null;
        }
        catch (CryptographicException ex)
        {
            errors.Add("--ca-file", $"{Path.GetFullPath(caFile)}: expected PEM certificates: {ex.Message}");
            return null;
        }

        if (trusted.Count == 0)
        {
            errors.Add("--ca-file", $"{Path.GetFullPath(caFile)}: expected PEM certificates, found none");
            return null;
        }

        return trusted;
    }

    /// <summary>An HTTP handler that, given <paramref name="trusted"/>, accepts a server certificate only if it chains to one of them (and names the host).</summary>
    private static SocketsHttpHandler TrustingHandler(X509Certificate2Collection? trusted)
    {
        var handler = new SocketsHttpHandler();
        if (trusted is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }

        return handler;
    }
}

/// <summary>A node's answer to one control request.</summary>
internal sealed record ControlAnswer(Uri Url, int Status, string? Reason, string Body)
{
    public bool Ok => Status is >= 200 and < 300;

    /// <summary>
    /// The one line for an answer the command cannot use: the URL, the status, the node's reason (its body), and for
    /// 401 how to pass the token; returns <see cref="CommandLine.Failure"/>.
    /// </summary>
    public async Task<int> RefusedAsync()
    {
        string why = Body.Trim();
        string status = Reason is { Length: > 0 } reason ? $"{Status.ToString(CultureInfo.InvariantCulture)} {reason}" : Status.ToString(CultureInfo.InvariantCulture);
        string hint = Status == (int)HttpStatusCode.Unauthorized ? " (pass the node's token with --token-file)" : "";
        await Console.Error.WriteLineAsync($"clustersync: {Url}: the node answered {status}{(why.Length > 0 ? ": " + why : "")}{hint}").ConfigureAwait(false);
        return CommandLine.Failure;
    }
}
