using System.Text;

namespace ClusterSync.Cli.Tests.Commands;

/// <summary>
/// Exit codes: 0 done, 1 a failure at run time (a node that cannot be reached), 2 bad input — naming the file and the
/// field or option, without a stack trace.
/// </summary>
public sealed class ExitCodeTests : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("clustersync-cli-exit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<CliProcess> RunAsync(params string[] args) => await CliProcess.RunAsync(s_timeout, args);

    [Fact]
    public async Task Node_ConfigurationWithSeveralErrors_Exit2NamingFileAndEveryField()
    {
        // Written from the node's own records: no key and no insecure, a member id that is not listed, an MTU too small.
        var path = NodeConfigWriter.Write(Path.Combine(_dir, "bad.json"), new NodeConfig
        {
            Cluster = new ClusterConfig { Members = [new MemberConfig { Id = 1, Address = "127.0.0.1:18116" }] },
            Node = new NodeSection { MemberId = 7, Control = new ControlConfig { Port = 0 } },
            Sync = new SyncConfig { Mtu = 5 },
        });

        await using var cli = await RunAsync("node", "--config", path);

        cli.AssertExit2($"{path}: cluster.keyFile:", $"{path}: node.memberId: 7 is not the id of one of cluster.members", $"{path}: sync.mtu: expected 256 to 65507 bytes, found 5");
    }

    [Fact]
    public async Task Node_MisspelledClassifierName_Exit2NamingPluginsClassifier()
    {
        var path = NodeConfigWriter.Write(Path.Combine(_dir, "classifier.json"), new NodeConfig
        {
            Cluster = new ClusterConfig { Insecure = true, Members = [new MemberConfig { Id = 1, Address = "127.0.0.1:18116" }] },
            Node = new NodeSection { MemberId = 1, Control = new ControlConfig { Port = 0 } },
            Plugins = new PluginsConfig { Classifier = "port-protocl" },
        });

        await using var cli = await RunAsync("node", "--config", path);

        cli.AssertExit2($"{path}: plugins.classifier: expected a loaded classifier plugin named 'port-protocl'");
    }

    [Fact]
    public async Task Node_NonLoopbackControlAddressWithoutToken_Exit2NamingTokenFileAndRequireTokenForReads()
    {
        var path = NodeConfigWriter.Write(Path.Combine(_dir, "control.json"), new NodeConfig
        {
            Cluster = new ClusterConfig { Insecure = true, Members = [new MemberConfig { Id = 1, Address = "127.0.0.1:18116" }] },
            Node = new NodeSection { MemberId = 1, Control = new ControlConfig { Address = "0.0.0.0", Port = 19116, AllowUnauthenticated = true } },
        });

        await using var cli = await RunAsync("node", "--config", path);

        cli.AssertExit2($"{path}: node.control.tokenFile: node.control.address 0.0.0.0 is not a loopback address",
            $"{path}: node.control.requireTokenForReads: node.control.address 0.0.0.0 is not a loopback address: expected true",
            $"{path}: node.control.allowUnauthenticated:");
    }

    [Fact]
    public async Task Train_ExistingModelWithoutForce_Exit2OneLineNamingTheFileAndForce_ModelUntouched()
    {
        var trace = Path.Combine(_dir, "trace.csv");
        await using (var generate = await RunAsync("generate", "--out", trace, "--days", "1", "--rate", "0.05"))
        {
            Assert.True(generate.ExitCode == 0, generate.Output);
        }

        var models = Directory.CreateDirectory(Path.Combine(_dir, "models")).FullName;
        var model = Path.Combine(models, "lifetime.zip");
        File.WriteAllText(model, "an operator's model");

        await using (var refused = await RunAsync("train", "--trace", trace, "--out-dir", models, "--no-plots", "--trees", "5"))
        {
            refused.AssertExit2($"{model}: the model exists; pass --force to overwrite it");
            Assert.Single(refused.Stderr.Trim().Split('\n'));
            Assert.Equal("", refused.Stdout);
        }

        Assert.Equal("an operator's model", File.ReadAllText(model));

        await using var forced = await CliProcess.RunAsync(TimeSpan.FromMinutes(3), "train", "--trace", trace, "--out-dir", models, "--no-plots", "--trees", "5", "--force");
        Assert.True(forced.ExitCode == 0, forced.Output);
        Assert.NotEqual("an operator's model", File.ReadAllText(model, Encoding.Latin1));
    }

    [Fact]
    public async Task Node_MissingFile_Exit2NamingTheFile()
    {
        var path = Path.Combine(_dir, "nope.json");

        await using var cli = await RunAsync("node", "--config", path);

        cli.AssertExit2($"{path}: cannot read the configuration file");
    }

    [Fact]
    public async Task Node_MalformedJson_Exit2NamingLineAndPosition()
    {
        var path = Path.Combine(_dir, "broken.json");
        File.WriteAllText(path, "{\n  \"cluster\": { \"insecure\": tru }\n}\n");

        await using var cli = await RunAsync("node", "--config", path);

        cli.AssertExit2($"{path}: malformed JSON at line 2");
    }

    [Fact]
    public async Task Keygen_NewFile_Exit0OwnerOnlyKey_ExistingFile_Exit2UnlessForced()
    {
        var key = Path.Combine(_dir, "cluster.key");

        await using (var first = await RunAsync("keygen", "--out", key))
        {
            Assert.True(first.ExitCode == 0, first.Output);
            Assert.Equal($"wrote {key}", first.Stdout.Trim());
        }

        var bytes = File.ReadAllBytes(key);
        Assert.True(bytes.Length > 32, $"{bytes.Length} bytes");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }

        await using (var again = await RunAsync("keygen", "--out", key))
        {
            again.AssertExit2($"{key}: the file exists; pass --force");
        }

        Assert.Equal(bytes, File.ReadAllBytes(key)); // untouched

        await using var forced = await RunAsync("keygen", "--out", key, "--force");
        Assert.True(forced.ExitCode == 0, forced.Output);
        Assert.NotEqual(bytes, File.ReadAllBytes(key));
    }

    [Fact]
    public async Task Status_NoNodeListening_Exit1SayingItCannotReachIt()
    {
        string endpoint = $"http://127.0.0.1:{Ports.FreeTcp()}";

        await using var cli = await RunAsync("status", "--endpoint", endpoint, "--timeout", "2", "--json");

        Assert.True(cli.ExitCode == 1, $"exit {cli.ExitCode}: {cli.Output}");
        Assert.Contains($"cannot reach the node at {endpoint}/status", cli.Stderr, StringComparison.Ordinal);
        Assert.Equal("", cli.Stdout);
    }

    [Fact]
    public async Task Status_BadEndpoint_Exit2NamingTheOption()
    {
        await using var cli = await RunAsync("status", "--endpoint", "not a url");

        cli.AssertExit2("--endpoint");
    }

    [Theory]
    [InlineData("soak --seeds 0", "--seeds: expected a number of seeds of at least 1, found 0")]
    [InlineData("generate --out OUT --rate -1", "--rate: expected connections per second")]
    [InlineData("simulate --trace MISSING --json", "MISSING")]
    [InlineData("simulate --trace MISSING --templates --template-threshold 1", "--template-threshold: expected a number of connections in [2, 1000000], found 1")]
    [InlineData("simulate --trace MISSING --templates --template-lifetime 0", "--template-lifetime: expected a number of seconds in [1, 86400], found 0")]
    public async Task Command_BadOptionValue_Exit2NamingTheOption(string args, string expected)
    {
        string Fill(string s) => s.Replace("OUT", Path.Combine(_dir, "x.csv"), StringComparison.Ordinal).Replace("MISSING", Path.Combine(_dir, "missing.csv"), StringComparison.Ordinal);

        await using var cli = await RunAsync(Fill(args).Split(' '));

        cli.AssertExit2(Fill(expected));
    }
}
