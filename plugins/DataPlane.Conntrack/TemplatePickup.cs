using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ClusterSync.Connections;
using ClusterSync.DataPlane;
using Microsoft.Win32.SafeHandles;

namespace ClusterSync.Plugins.Conntrack;

/// <summary>
/// The kernel side of connection templates (docs/conntrack.md, "Connection templates"). At a takeover it installs, in
/// the table of the firewall's forward policy (<see cref="TemplatePickupSettings"/>), a set per address family of the
/// live templates' tuples (source address . destination address . protocol . destination port, each element with a
/// timeout: the shorter of the pickup window and the template's remaining life), a chain of rules that accept a
/// packet of such a tuple that has no state yet — for TCP only a mid-stream segment (ACK without SYN, FIN or RST, in
/// either direction), for UDP and SCTP any — and one rule first in the forward chain that jumps there for
/// <c>ct state new</c>. The accepted packet confirms the connection the kernel created for it: conntrack holds it from
/// then on, the source announces it, and the forward policy's own <c>established</c> rule carries the rest. For a TCP
/// segment the kernel creates that state only with <c>nf_conntrack_tcp_loose</c> on, so the window raises it when it is
/// off (<see cref="TemplatePickupSettings.TcpLoose"/>) and restores it at the end. When the window ends the jump rule,
/// the chain and the sets are removed. All of it through the real <c>nft</c> command, run in the sink's network
/// namespace.
/// </summary>
internal sealed partial class TemplatePickup : IDisposable
{
    /// <summary>The chain and set names in the operator's table, and the jump rule's comment (how it is found again).</summary>
    public const string ChainName = "clustersync_templates";
    public const string Set4 = "clustersync_templates4";
    public const string Set6 = "clustersync_templates6";
    public const string Comment = "clustersync connection templates";
    private const string LooseRaisedComment = Comment + " (tcp_loose was 0)";
    private const string LoosePath = "/proc/sys/net/netfilter/nf_conntrack_tcp_loose";
    private const int CloneNewNet = 0x40000000;
    private static readonly TimeSpan s_nftTimeout = TimeSpan.FromSeconds(10);

    private readonly TemplatePickupSettings _settings;
    private readonly TimeProvider _time;
    private readonly string _nft;
    private readonly SafeFileHandle? _netns;
    private readonly object _lock = new();
    private ITimer? _windowTimer;
    private bool _looseRaised;
    private bool _disposed;
    private long _windows;
    private long _windowsEnded;
    private long _installed;
    private long _installedTotal;
    private long _expiredSkipped;
    private long _installFailures;
    private long _removeFailures;
    private long _active;
    private long _pickupPackets;
    private long _leftoversRemoved;

    private TemplatePickup(TemplatePickupSettings settings, TimeProvider time, string nft, SafeFileHandle? netns)
    {
        _settings = settings;
        _time = time;
        _nft = nft;
        _netns = netns;
    }

    /// <summary>
    /// The pickup for the network namespace of the calling thread (as the sink's sockets). Removes what a node that died
    /// inside a window left (found by the jump rule's comment; the loose setting restored if that window raised it).
    /// Throws <see cref="ConntrackUnavailableException"/> when the <c>nft</c> command is missing.
    /// </summary>
    public static TemplatePickup Create(TemplatePickupSettings settings, TimeProvider time)
    {
        string nft = FindNft() ?? throw new ConntrackUnavailableException(
            "conntrack data plane: templates: the nft command was not found (apt-get install nftables); it installs the template pickup at a takeover");
        SafeFileHandle? netns = null;
        try
        {
            netns = File.OpenHandle("/proc/thread-self/ns/net");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        var pickup = new TemplatePickup(settings, time, nft, netns);
        try
        {
            pickup.InNamespace(() =>
            {
                if (pickup.RemoveLocked())
                {
                    Interlocked.Increment(ref pickup._leftoversRemoved);
                }

                return 0;
            });
        }
        catch (InvalidOperationException)
        {
            // The forward policy is not loaded yet (no such table or chain): nothing of ours can be in it either.
        }

        return pickup;
    }

    /// <summary>
    /// Installs <paramref name="templates"/> for one pickup window from now (replacing a window still open); an empty or
    /// all-expired list only ends an open window. Throws <see cref="InvalidOperationException"/> with nft's answer
    /// when the kernel refuses the rules (no such table or chain, ...).
    /// </summary>
    public void Install(IReadOnlyList<ReplicaTemplate> templates)
    {
        long now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        int windowMs = _settings.PickupWindowSeconds * 1000;
        var elements = new List<(ReplicaTemplate Template, int Seconds)>(templates.Count);
        foreach (var t in templates)
        {
            long left = Math.Min(t.ExpiresAtMs - now, windowMs);
            if (left <= 0 || !Installable(t.Shape))
            {
                Interlocked.Increment(ref _expiredSkipped);
                continue;
            }

            elements.Add((t, (int)Math.Max(1, (left + 999) / 1000)));
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _windowTimer?.Dispose();
            _windowTimer = null;
            if (elements.Count == 0 && Interlocked.Read(ref _active) == 0 && !_looseRaised)
            {
                return;   // nothing to install, nothing open
            }

            InNamespace(() =>
            {
                if (elements.Count == 0)
                {
                    EndWindowLocked();
                    return 0;
                }

                bool raise = _settings.TcpLoose && !_looseRaised && ReadLoose() == 0;
                try
                {
                    var handles = JumpRules(out _);
                    Nft(InstallScript(_settings, elements, handles, _looseRaised || raise), "install the template pickup");
                }
                catch
                {
                    Interlocked.Increment(ref _installFailures);
                    throw;
                }

                if (raise)
                {
                    File.WriteAllText(LoosePath, "1");
                    _looseRaised = true;
                }

                return 0;
            });

            if (elements.Count == 0)
            {
                return;
            }

            Interlocked.Increment(ref _windows);
            Interlocked.Exchange(ref _installed, elements.Count);
            Interlocked.Add(ref _installedTotal, elements.Count);
            Interlocked.Exchange(ref _active, 1);
            _windowTimer = _time.CreateTimer(static p => ((TemplatePickup)p!).OnWindowEnd(), this, TimeSpan.FromMilliseconds(windowMs), Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>True while a pickup window is open (its rules are in the kernel).</summary>
    public bool Active => Interlocked.Read(ref _active) == 1;

    public void AddCounters(Dictionary<string, long> c)
    {
        c["template_windows"] = Interlocked.Read(ref _windows);
        c["template_windows_ended"] = Interlocked.Read(ref _windowsEnded);
        c["template_window_active"] = Interlocked.Read(ref _active);
        c["templates_installed"] = Interlocked.Read(ref _installed);
        c["templates_installed_total"] = Interlocked.Read(ref _installedTotal);
        c["templates_skipped"] = Interlocked.Read(ref _expiredSkipped);
        c["template_install_failures"] = Interlocked.Read(ref _installFailures);
        c["template_remove_failures"] = Interlocked.Read(ref _removeFailures);
        c["template_pickup_packets"] = Interlocked.Read(ref _pickupPackets);
        c["template_leftovers_removed"] = Interlocked.Read(ref _leftoversRemoved);
    }

    /// <summary>
    /// The nft script of one installation: the chain and sets (created or emptied), their rules and elements, the old
    /// jump rules (<paramref name="oldJumps"/>: handles) deleted and one new jump inserted first in the forward chain —
    /// one transaction, so the forward chain never holds two jumps or a jump to a half-built chain.
    /// </summary>
    internal static string InstallScript(TemplatePickupSettings s, IReadOnlyList<(ReplicaTemplate Template, int Seconds)> elements, IReadOnlyList<long> oldJumps, bool looseRaised)
    {
        string table = $"{s.Family} {s.Table}";
        var b = new StringBuilder();
        foreach (long h in oldJumps)
        {
            b.Append(CultureInfo.InvariantCulture, $"delete rule {table} {s.Chain} handle {h}\n");
        }

        b.Append(CultureInfo.InvariantCulture, $"add chain {table} {ChainName}\nflush chain {table} {ChainName}\n");
        foreach (bool v6 in Families(s.Family))
        {
            string set = v6 ? Set6 : Set4;
            string ip = v6 ? "ip6" : "ip";
            b.Append(CultureInfo.InvariantCulture, $"add set {table} {set} {{ type {SetType(v6)}; flags timeout; }}\n");
            b.Append(CultureInfo.InvariantCulture, $"flush set {table} {set}\n");
            // TCP: a mid-stream segment (ACK, no SYN/FIN/RST) either way round: the client's, or the server's first.
            b.Append(CultureInfo.InvariantCulture, $"add rule {table} {ChainName} meta l4proto tcp tcp flags & (fin|syn|rst|ack) == ack {ip} saddr . {ip} daddr . meta l4proto . th dport @{set} counter accept\n");
            b.Append(CultureInfo.InvariantCulture, $"add rule {table} {ChainName} meta l4proto tcp tcp flags & (fin|syn|rst|ack) == ack {ip} daddr . {ip} saddr . meta l4proto . th sport @{set} counter accept\n");
            b.Append(CultureInfo.InvariantCulture, $"add rule {table} {ChainName} meta l4proto {{ udp, sctp }} {ip} saddr . {ip} daddr . meta l4proto . th dport @{set} counter accept\n");
            var mine = elements.Where(e => e.Template.Shape.IsIPv6 == v6).ToList();
            for (int i = 0; i < mine.Count; i += 1000)
            {
                b.Append(CultureInfo.InvariantCulture, $"add element {table} {set} {{ ");
                b.AppendJoin(", ", mine.Skip(i).Take(1000).Select(e => Element(e.Template.Shape, e.Seconds)));
                b.Append(" }\n");
            }
        }

        b.Append(CultureInfo.InvariantCulture, $"insert rule {table} {s.Chain} ct state new jump {ChainName} comment \"{(looseRaised ? LooseRaisedComment : Comment)}\"\n");
        return b.ToString();
    }

    /// <summary>The nft script that removes an installation: the jump rules (<paramref name="jumps"/>), the chain, the sets.</summary>
    internal static string RemoveScript(TemplatePickupSettings s, IReadOnlyList<long> jumps)
    {
        string table = $"{s.Family} {s.Table}";
        var b = new StringBuilder();
        foreach (long h in jumps)
        {
            b.Append(CultureInfo.InvariantCulture, $"delete rule {table} {s.Chain} handle {h}\n");
        }

        // "add" first: each delete then finds its object, whether or not an installation left it (nft 1.0.6 has no destroy).
        b.Append(CultureInfo.InvariantCulture, $"add chain {table} {ChainName}\nflush chain {table} {ChainName}\ndelete chain {table} {ChainName}\n");
        foreach (bool v6 in Families(s.Family))
        {
            string set = v6 ? Set6 : Set4;
            b.Append(CultureInfo.InvariantCulture, $"add set {table} {set} {{ type {SetType(v6)}; flags timeout; }}\ndelete set {table} {set}\n");
        }

        return b.ToString();
    }

    private static string SetType(bool v6) => v6
        ? "ipv6_addr . ipv6_addr . inet_proto . inet_service"
        : "ipv4_addr . ipv4_addr . inet_proto . inet_service";

    /// <summary>One set element: <c>src . dst . proto . dport timeout Ns</c>.</summary>
    internal static string Element(in ConnectionKey shape, int seconds)
        => string.Create(CultureInfo.InvariantCulture, $"{Address(shape, source: true)} . {Address(shape, source: false)} . {shape.Protocol} . {shape.DestinationPort} timeout {seconds}s");

    private static string Address(in ConnectionKey k, bool source)
    {
        if (!k.IsIPv6)
        {
            uint a = source ? k.SourceV4 : k.DestinationV4;
            return string.Create(CultureInfo.InvariantCulture, $"{a >> 24}.{(a >> 16) & 0xFF}.{(a >> 8) & 0xFF}.{a & 0xFF}");
        }

        return (source ? k.SourceAddress : k.DestinationAddress).ToString();
    }

    private bool Installable(in ConnectionKey shape)
        => shape.Protocol is 6 or 17 or 132 && (shape.IsIPv6 ? _settings.Family != "ip" : _settings.Family != "ip6");

    private static IEnumerable<bool> Families(string family) => family switch
    {
        "ip" => [false],
        "ip6" => [true],
        _ => [false, true],
    };

    private void OnWindowEnd()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _windowTimer?.Dispose();
            _windowTimer = null;
            try
            {
                InNamespace(() =>
                {
                    EndWindowLocked();
                    return 0;
                });
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                Interlocked.Increment(ref _removeFailures);
            }
        }
    }

    /// <summary>Removes the installation (when there is one) and restores the loose setting; counts the window's end.</summary>
    private void EndWindowLocked()
    {
        bool had;
        try
        {
            had = RemoveLocked();
        }
        catch
        {
            Interlocked.Increment(ref _removeFailures);
            throw;
        }

        if (had || Interlocked.Read(ref _active) == 1)
        {
            Interlocked.Increment(ref _windowsEnded);
        }

        Interlocked.Exchange(ref _active, 0);
    }

    /// <summary>Removes whatever of ours is in the table (reading the rule counters first); false when there was nothing.</summary>
    private bool RemoveLocked()
    {
        var jumps = JumpRules(out bool looseRaisedBefore);
        long packets = ReadPickupPackets();
        if (packets > 0)
        {
            Interlocked.Add(ref _pickupPackets, packets);
        }

        // Chain and sets come and go in one transaction: no chain and no jump, nothing of ours is there.
        if (jumps.Count > 0 || packets >= 0)
        {
            Nft(RemoveScript(_settings, jumps), "remove the template pickup");
        }

        if (_looseRaised || looseRaisedBefore)
        {
            File.WriteAllText(LoosePath, "0");
            _looseRaised = false;
        }

        return jumps.Count > 0;
    }

    /// <summary>Handles of our jump rules in the forward chain (by comment); whether one says the loose setting was raised.</summary>
    private List<long> JumpRules(out bool looseRaised)
    {
        looseRaised = false;
        var handles = new List<long>();
        string json = Nft(null, "list the forward chain", "-j", "-a", "list", "chain", _settings.Family, _settings.Table, _settings.Chain);
        foreach (var item in Items(json))
        {
            if (item.TryGetProperty("rule", out var rule) && rule.TryGetProperty("comment", out var comment) && comment.ValueKind == JsonValueKind.String
                && comment.GetString() is { } text && text.StartsWith(Comment, StringComparison.Ordinal)
                && rule.TryGetProperty("handle", out var handle) && handle.ValueKind == JsonValueKind.Number)
            {
                handles.Add(handle.GetInt64());
                looseRaised |= text == LooseRaisedComment;
            }
        }

        return handles;
    }

    /// <summary>Packets our chain's rules accepted (their counters); -1 when the chain is not there.</summary>
    private long ReadPickupPackets()
    {
        string json;
        try
        {
            json = Nft(null, "list the pickup chain", "-j", "list", "chain", _settings.Family, _settings.Table, ChainName);
        }
        catch (InvalidOperationException)
        {
            return -1;
        }

        long packets = 0;
        foreach (var item in Items(json))
        {
            if (item.TryGetProperty("rule", out var rule) && rule.TryGetProperty("expr", out var exprs) && exprs.ValueKind == JsonValueKind.Array)
            {
                foreach (var expr in exprs.EnumerateArray())
                {
                    if (expr.TryGetProperty("counter", out var counter) && counter.TryGetProperty("packets", out var p))
                    {
                        packets += p.GetInt64();
                    }
                }
            }
        }

        return packets;
    }

    /// <summary>The objects of <c>nft -j</c> output (<c>{"nftables": [...]}</c>); <see cref="InvalidOperationException"/> when it is not that.</summary>
    private static List<JsonElement> Items(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("nftables", out var items) && items.ValueKind == JsonValueKind.Array
                ? [.. items.EnumerateArray().Select(i => i.Clone())]
                : throw new InvalidOperationException("conntrack data plane: templates: nft -j printed no \"nftables\" list");
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"conntrack data plane: templates: nft -j printed no JSON: {ex.Message}", ex);
        }
    }

    private static int ReadLoose()
    {
        try
        {
            return int.TryParse(File.ReadAllText(LoosePath).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : -1;
        }
        catch (IOException)
        {
            return -1;   // no TCP conntrack sysctls in this namespace (conntrack not loaded): nothing to raise
        }
    }

    /// <summary>Runs nft (a script on stdin, or arguments); its stdout, or <see cref="InvalidOperationException"/> with its answer.</summary>
    private string Nft(string? script, string what, params string[] args)
    {
        var info = new ProcessStartInfo(_nft)
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

        using var p = Process.Start(info) ?? throw new InvalidOperationException($"conntrack data plane: templates: could not start {_nft} to {what}");
        if (script is not null)
        {
            p.StandardInput.Write(script);
            p.StandardInput.Close();
        }

        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(s_nftTimeout))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"conntrack data plane: templates: nft did not {what} within {s_nftTimeout.TotalSeconds:0} s"));
        }

        p.WaitForExit();
        return p.ExitCode == 0
            ? stdout.Result
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"conntrack data plane: templates: nft refused to {what} in {_settings.Family} {_settings.Table} {_settings.Chain} (exit {p.ExitCode}): {stderr.Result.Trim()}"));
    }

    /// <summary>
    /// Runs <paramref name="action"/> in the sink's network namespace: nft (a child process) and the sysctl file both act
    /// on the namespace of the thread that starts or opens them, and a timer's thread may be elsewhere (setns is per thread).
    /// </summary>
    private T InNamespace<T>(Func<T> action)
    {
        if (_netns is null)
        {
            return action();
        }

        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (SetNs(_netns, CloneNewNet) != 0)
                {
                    throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"conntrack data plane: templates: setns into the sink's network namespace failed: errno {Marshal.GetLastPInvokeError()}"));
                }

                result = action();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        })
        {
            IsBackground = true,
            Name = "cs-conntrack-templates",
        };
        thread.Start();
        thread.Join();   // every nft call inside is bounded by its timeout
        if (error is null)
        {
            return result;
        }

        throw error is InvalidOperationException or IOException or UnauthorizedAccessException
            ? error
            : new InvalidOperationException(error.Message, error);
    }

    private static string? FindNft()
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, "nft"))
            .FirstOrDefault(File.Exists);

    /// <summary>Ends an open window at once (the node stops): rules and sets removed, the loose setting restored.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _windowTimer?.Dispose();
            _windowTimer = null;
            if (Interlocked.Read(ref _active) == 1 || _looseRaised)
            {
                try
                {
                    InNamespace(() =>
                    {
                        EndWindowLocked();
                        return 0;
                    });
                }
                catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
                {
                    Interlocked.Increment(ref _removeFailures);
                }
            }
        }

        _netns?.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(SafeFileHandle fd, int nstype);
}
