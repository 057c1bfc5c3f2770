namespace ClusterSync.Node.Tests.Control.Http;

public sealed class ControlAccessTests
{
    private const string Token = "0123456789abcdef0123456789abcdef";
    private readonly ControlAccess _access = new(Token, bindAddress: IPAddress.Loopback);

    [Fact]
    public void Check_PostWithoutAuthorization_401()
    {
        Assert.Equal(401, _access.Check("POST", "127.0.0.1:9116", null, null)?.Status);
    }

    [Theory]
    [InlineData("Bearer 0123456789abcdef0123456789abcdee")]
    [InlineData("Bearer 0123456789abcdef0123456789abcdef0")]
    [InlineData("Bearer ")]
    [InlineData("Basic MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")]
    [InlineData("0123456789abcdef0123456789abcdef")]
    public void Check_PostWithWrongOrMalformedToken_401(string authorization)
    {
        Assert.Equal(401, _access.Check("POST", "localhost", null, authorization)?.Status);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public void Check_StateChangingWithToken_Allowed(string method)
    {
        Assert.Null(_access.Check(method, "localhost:9116", null, $"Bearer {Token}"));
    }

    [Fact]
    public void Check_GetWithoutToken_AllowedUnlessRequiredForReads()
    {
        Assert.Null(_access.Check("GET", "127.0.0.1", null, null));
        var strict = new ControlAccess(Token, requireTokenForReads: true);
        Assert.Equal(401, strict.Check("GET", "127.0.0.1", null, null)?.Status);
        Assert.Null(strict.Check("HEAD", "127.0.0.1", null, $"Bearer {Token}"));
    }

    [Fact]
    public void Check_PostWithNoTokenConfigured_403NamingTheSetting()
    {
        var refused = new ControlAccess(null).Check("POST", "127.0.0.1", null, null);

        Assert.Equal(403, refused?.Status);
        Assert.Contains("node.control.tokenFile", refused?.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_PostWithNoTokenAndAllowUnauthenticated_Allowed()
    {
        Assert.Null(new ControlAccess(null, allowUnauthenticated: true).Check("POST", "127.0.0.1", null, null));
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:9116")]
    [InlineData("localhost.evil.example")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("10.0.0.1:9116")]
    [InlineData("127.0.0.1:notaport")]
    [InlineData("[::1")]
    [InlineData("")]
    public void Check_ForeignHost_403EvenWithToken(string host)
    {
        var refused = _access.Check("POST", host, null, $"Bearer {Token}");

        Assert.Equal(403, refused?.Status);
        Assert.Equal(403, _access.Check("GET", host, null, null)?.Status);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("LOCALHOST:9116")]
    [InlineData("127.0.0.1:9116")]
    [InlineData("127.0.0.2")]
    [InlineData("[::1]:9116")]
    [InlineData("[::1]")]
    public void Check_LoopbackHost_Allowed(string host)
    {
        Assert.Null(_access.Check("GET", host, null, null));
    }

    [Theory]
    [InlineData("http://evil.example")]
    [InlineData("https://127.0.0.1:9116")]
    [InlineData("null")]
    [InlineData("http://127.0.0.1:9116/path")]
    [InlineData("http://user@127.0.0.1:9116")]
    public void Check_ForeignOrigin_403EvenWithToken(string origin)
    {
        Assert.Equal(403, _access.Check("POST", "127.0.0.1:9116", origin, $"Bearer {Token}")?.Status);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9116")]
    [InlineData("http://localhost:9116")]
    public void Check_LoopbackOrigin_Allowed(string origin)
    {
        Assert.Null(_access.Check("POST", "127.0.0.1:9116", origin, $"Bearer {Token}"));
    }

    [Fact]
    public void Check_NoHostHeader_AllowedForNonBrowserClients()
    {
        Assert.Null(_access.Check("POST", null, null, $"Bearer {Token}"));
    }
}
