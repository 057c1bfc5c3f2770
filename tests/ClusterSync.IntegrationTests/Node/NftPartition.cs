namespace ClusterSync.IntegrationTests.Node;

/// <summary>
/// A network partition between cluster members on loopback, made with a real firewall: an nftables table of its own
/// (<c>inet clustersync_test_&lt;random&gt;</c>) whose output-hook chain drops UDP between the given sync ports
/// (both directions) and TCP to or from the given full sync ports. Only those ports are matched; healing (or
/// disposing, or the test process exiting) deletes the whole table, so no rule is ever left behind.
/// Needs root and the <c>nft</c> command (Debian package <c>nftables</c>).
/// </summary>
internal sealed class NftPartition : IDisposable
{
    private static readonly Lazy<string?> s_skipReason = new(Probe);
    private readonly object _sync = new();
    private bool _installed;

    private NftPartition(string table) => Table = table;

    public string Table { get; }

    /// <summary>Why a partition cannot be made here (null when it can): not root, no <c>nft</c>, or nftables refused.</summary>
    public static string? SkipReason => s_skipReason.Value;

    /// <summary>Installs the partition: drops UDP among <paramref name="syncPorts"/> and TCP to or from <paramref name="fullSyncPorts"/>.</summary>
    public static NftPartition Drop(IReadOnlyCollection<int> syncPorts, IReadOnlyCollection<int> fullSyncPorts)
    {
        var p = new NftPartition($"clustersync_test_{Guid.NewGuid():N}"[..32]);
        string udp = string.Join(", ", syncPorts);
        string tcp = string.Join(", ", fullSyncPorts);
        var (code, output) = Run($$"""
            table inet {{p.Table}} {
              chain out {
                type filter hook output priority 0; policy accept;
                udp sport { {{udp}} } udp dport { {{udp}} } counter drop
                tcp dport { {{tcp}} } counter drop
                tcp sport { {{tcp}} } counter drop
              }
            }
            """);
        Assert.True(code == 0, $"nft could not install table {p.Table}: {output}");
        lock (p._sync)
        {
            p._installed = true;
        }

        AppDomain.CurrentDomain.ProcessExit += p.OnProcessExit;
        return p;
    }

    /// <summary>Packets the partition dropped so far (the rules' counters).</summary>
    public long DroppedPackets()
    {
        var (code, output) = Run(null, "list", "table", "inet", Table);
        if (code != 0)
        {
            return 0;
        }

        long sum = 0;
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(output, @"counter packets (\d+)"))
        {
            sum += long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }

        return sum;
    }

    /// <summary>Ends the partition: deletes the table (idempotent).</summary>
    public void Heal()
    {
        lock (_sync)
        {
            if (!_installed)
            {
                return;
            }

            var (code, output) = Run(null, "delete", "table", "inet", Table);
            _installed = false;
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            Assert.True(code == 0, $"nft could not delete table {Table}: {output}");
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            if (_installed)
            {
                Run(null, "delete", "table", "inet", Table);
                _installed = false;
                AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            }
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux nftables";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "needs root to install nftables rules (CI runs as root)";
        }

        string table = $"clustersync_probe_{Guid.NewGuid():N}"[..32];
        try
        {
            var (code, output) = Run($"table inet {table} {{ }}\n");
            if (code != 0)
            {
                return $"nftables refused a table here: {output.Trim()}";
            }

            Run(null, "delete", "table", "inet", table);
            return null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "the nft command is missing (apt-get install nftables)";
        }
    }

    /// <summary>Runs <c>nft</c> with <paramref name="args"/>, or <c>nft -f -</c> fed <paramref name="script"/>.</summary>
    private static (int Code, string Output) Run(string? script, params string[] args)
    {
        var info = new ProcessStartInfo("nft")
        {
            RedirectStandardInput = script is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (script is not null)
        {
            info.ArgumentList.Add("-f");
            info.ArgumentList.Add("-");
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        if (script is not null)
        {
            p.StandardInput.Write(script);
            p.StandardInput.Close();
        }

        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000))
        {
            p.Kill();
            return (-1, "nft did not finish within 10 s");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>A fact that needs nftables as root; skipped with the reason otherwise (see <see cref="NftPartition.SkipReason"/>).</summary>
internal sealed class NftFactAttribute : FactAttribute
{
    public NftFactAttribute()
    {
        if (NftPartition.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
