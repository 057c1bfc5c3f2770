using System.Buffers.Binary;
using System.Security.Cryptography;
using ClusterSync.Security;

namespace ClusterSync.FullSync;

/// <summary>Why a server refused in its hello (a byte of ServerHello).</summary>
internal enum HelloStatus : byte
{
    Accepted = 0,
    UnknownMember = 1,
    Busy = 2,
}

/// <summary>The outcome of a handshake: on success both directions' frame protection.</summary>
internal sealed record HandshakeResult(FullSyncStatus Status, string? Error, byte PeerMember, FrameProtection? Send, FrameProtection? Receive)
{
    public bool Ok => Status == FullSyncStatus.Completed;

    public void DisposeKeys()
    {
        Send?.Dispose();
        Receive?.Dispose();
    }
}

/// <summary>
/// The full-sync handshake (README.md): ClientHello(nonce) → ServerHello(nonce, proof) → ClientFinish(proof).
/// Session keys come from HKDF-SHA256 over the cluster key, both member ids and both nonces; each side proves it
/// holds the cluster key with an HMAC over the transcript. Nothing secret is ever sent.
/// </summary>
internal static class FullSyncHandshake
{
    public const byte Version = 1;
    public const int NonceSize = 32;
    public const int ProofSize = 32;
    public const int ClientHelloSize = 8 + NonceSize;              // 40
    public const int ServerHelloSize = 8 + NonceSize + ProofSize;  // 72
    public const int ClientFinishSize = 8 + ProofSize;             // 40
    private const byte TypeClientHello = 1;
    private const byte TypeServerHello = 2;
    private const byte TypeClientFinish = 3;
    public const uint ClientToServer = 0x43325300; // "C2S\0"
    public const uint ServerToClient = 0x53324300; // "S2C\0"

    private static void WritePreamble(Span<byte> m, byte type, byte member, byte extra)
    {
        "CSFS"u8.CopyTo(m);
        m[4] = Version;
        m[5] = type;
        m[6] = member;
        m[7] = extra;
    }

    /// <summary>A joiner's first message: the preamble naming <paramref name="member"/> and a fresh random nonce (no key needed).</summary>
    internal static byte[] NewClientHello(byte member)
    {
        var hello = new byte[ClientHelloSize];
        WritePreamble(hello, TypeClientHello, member, 0);
        RandomNumberGenerator.Fill(hello.AsSpan(8, NonceSize));
        return hello;
    }

    private static bool CheckPreamble(ReadOnlySpan<byte> m, byte type) => m[..4].SequenceEqual("CSFS"u8) && m[4] == Version && m[5] == type && m[6] != 0;

    /// <summary>96 bytes: client→server key, server→client key, confirmation (HMAC) key.</summary>
    private static void DeriveKeys(ClusterKey key, byte client, byte server, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> serverNonce, Span<byte> keys)
    {
        Span<byte> info = stackalloc byte[8 + 2 + (2 * NonceSize)];
        "fullsync"u8.CopyTo(info);
        info[8] = client;
        info[9] = server;
        clientNonce.CopyTo(info[10..]);
        serverNonce.CopyTo(info[(10 + NonceSize)..]);
        key.DeriveFullSyncKeys(keys, info);
    }

    private static void Proof(ReadOnlySpan<byte> confirmKey, ReadOnlySpan<byte> label, ReadOnlySpan<byte> clientHello, ReadOnlySpan<byte> serverHelloHead, Span<byte> proof)
    {
        Span<byte> transcript = stackalloc byte[6 + ClientHelloSize + 8 + NonceSize];
        label.CopyTo(transcript);
        clientHello.CopyTo(transcript[6..]);
        serverHelloHead.CopyTo(transcript[(6 + ClientHelloSize)..]);
        HMACSHA256.HashData(confirmKey, transcript, proof);
    }

    private static HandshakeResult Fail(FullSyncStatus status, string error, byte peer = 0) => new(status, error, peer, null, null);

    /// <summary>A failure once the keys were derived: they are wiped first.</summary>
    private static HandshakeResult Fail(byte[] keys, FullSyncStatus status, string error, byte peer)
    {
        CryptographicOperations.ZeroMemory(keys);
        return Fail(status, error, peer);
    }

    /// <summary>
    /// The end of either side: with <paramref name="peerProven"/> (the peer's proof verified), this side's frame protection
    /// (<paramref name="clientSide"/>: sends client-to-server; else the reverse) from <paramref name="keys"/>, which are wiped.
    /// </summary>
    private static HandshakeResult Finish(byte[] keys, bool peerProven, byte peer, bool clientSide)
    {
        if (!peerProven)
        {
            return Fail(keys, FullSyncStatus.WrongKey, $"member {peer} does not hold our cluster key (its handshake proof did not verify)", peer);
        }

        var clientToServer = new FrameProtection(keys.AsSpan(0, 32), ClientToServer);
        var serverToClient = new FrameProtection(keys.AsSpan(32, 32), ServerToClient);
        CryptographicOperations.ZeroMemory(keys);
        return clientSide
            ? new HandshakeResult(FullSyncStatus.Completed, null, peer, clientToServer, serverToClient)
            : new HandshakeResult(FullSyncStatus.Completed, null, peer, serverToClient, clientToServer);
    }

    /// <summary>The joiner's side. Sends its proof even when the server's fails, so the server counts the wrong key too.</summary>
    public static async Task<HandshakeResult> ClientAsync(Stream stream, ClusterKey key, byte member, CancellationToken cancellationToken)
    {
        var hello = NewClientHello(member);
        await stream.WriteAsync(hello, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);

        var reply = new byte[ServerHelloSize];
        if (!await ReadAllAsync(stream, reply, cancellationToken).ConfigureAwait(false))
        {
            return Fail(FullSyncStatus.Truncated, "the server closed the stream during the handshake");
        }

        if (!CheckPreamble(reply, TypeServerHello))
        {
            return Fail(FullSyncStatus.Malformed, "the server's hello is not a ClusterSync full-sync v1 hello");
        }

        byte server = reply[6];
        if (reply[7] != (byte)HelloStatus.Accepted)
        {
            return Fail(FullSyncStatus.Refused, $"member {server} refused: {(HelloStatus)reply[7]}", server);
        }

        var keys = new byte[96];
        DeriveKeys(key, member, server, hello.AsSpan(8, NonceSize), reply.AsSpan(8, NonceSize), keys);
        bool serverOk = VerifyServerProof(keys, hello, reply);
        var finish = new byte[ClientFinishSize];
        WritePreamble(finish, TypeClientFinish, member, 0);
        Proof(keys.AsSpan(64, 32), "client"u8, hello, reply.AsSpan(0, 8 + NonceSize), finish.AsSpan(8));
        await stream.WriteAsync(finish, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        return Finish(keys, serverOk, server, clientSide: true);
    }

    /// <summary>The source's side. <paramref name="admit"/> decides (by member id) whether to serve; a refusal is sent in the hello.</summary>
    public static async Task<HandshakeResult> ServerAsync(Stream stream, ClusterKey key, byte member, Func<byte, HelloStatus> admit, CancellationToken cancellationToken)
    {
        var hello = new byte[ClientHelloSize];
        if (!await ReadAllAsync(stream, hello, cancellationToken).ConfigureAwait(false))
        {
            return Fail(FullSyncStatus.Truncated, "the client closed the stream during the handshake");
        }

        if (!CheckPreamble(hello, TypeClientHello) || hello[7] != 0)
        {
            return Fail(FullSyncStatus.Malformed, "the client's hello is not a ClusterSync full-sync v1 hello");
        }

        byte client = hello[6];
        var status = client == member ? HelloStatus.UnknownMember : admit(client);
        var reply = new byte[ServerHelloSize];
        WritePreamble(reply, TypeServerHello, member, (byte)status);
        RandomNumberGenerator.Fill(reply.AsSpan(8, NonceSize));
        var keys = new byte[96];
        DeriveKeys(key, client, member, hello.AsSpan(8, NonceSize), reply.AsSpan(8, NonceSize), keys);
        if (status == HelloStatus.Accepted)
        {
            Proof(keys.AsSpan(64, 32), "server"u8, hello, reply.AsSpan(0, 8 + NonceSize), reply.AsSpan(8 + NonceSize));
        }

        await stream.WriteAsync(reply, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (status != HelloStatus.Accepted)
        {
            return Fail(keys, FullSyncStatus.Refused, $"refused member {client}: {status}", client);
        }

        var finish = new byte[ClientFinishSize];
        if (!await ReadAllAsync(stream, finish, cancellationToken).ConfigureAwait(false))
        {
            return Fail(keys, FullSyncStatus.Truncated, $"member {client} closed the stream during the handshake", client);
        }

        if (!CheckPreamble(finish, TypeClientFinish) || finish[6] != client)
        {
            return Fail(keys, FullSyncStatus.Malformed, $"member {client}'s finish message is malformed", client);
        }

        return Finish(keys, VerifyClientProof(keys, hello, reply, finish), client, clientSide: false);
    }

    private static bool VerifyServerProof(byte[] keys, byte[] hello, byte[] reply)
    {
        Span<byte> expected = stackalloc byte[ProofSize];
        Proof(keys.AsSpan(64, 32), "server"u8, hello, reply.AsSpan(0, 8 + NonceSize), expected);
        return CryptographicOperations.FixedTimeEquals(expected, reply.AsSpan(8 + NonceSize, ProofSize));
    }

    private static bool VerifyClientProof(byte[] keys, byte[] hello, byte[] reply, byte[] finish)
    {
        Span<byte> expected = stackalloc byte[ProofSize];
        Proof(keys.AsSpan(64, 32), "client"u8, hello, reply.AsSpan(0, 8 + NonceSize), expected);
        return CryptographicOperations.FixedTimeEquals(expected, finish.AsSpan(8, ProofSize));
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes; false on a clean or early end of stream.</summary>
    public static async ValueTask<bool> ReadAllAsync(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return read == buffer.Length;
    }
}
