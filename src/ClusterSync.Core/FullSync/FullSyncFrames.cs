using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ClusterSync.FullSync;

/// <summary>Types of sealed frames (the first plaintext byte). See README.md.</summary>
internal enum FrameType : byte
{
    Begin = 1,
    Records = 2,
    End = 3,
    Error = 4,
}

/// <summary>How a full sync ended. Everything but <see cref="Completed"/> is an expected failure, counted, never thrown.</summary>
public enum FullSyncStatus
{
    Completed,
    /// <summary>The peer does not hold our cluster key (a handshake proof did not verify).</summary>
    WrongKey,
    /// <summary>The server refused (unknown member, too many transfers) or reported an error.</summary>
    Refused,
    /// <summary>A sealed frame failed authentication (tampered, reordered, replayed or truncated).</summary>
    AuthenticationFailed,
    /// <summary>A frame or message that authenticated (or a handshake message) did not parse.</summary>
    Malformed,
    /// <summary>The stream ended before the End frame.</summary>
    Truncated,
    ConnectFailed,
    TimedOut,
    Canceled,
    /// <summary>The joiner's engine refused the cut (the source restarted since).</summary>
    StaleEpoch,
}

/// <summary>
/// One direction of a full-sync stream: AES-256-GCM frames <c>length(4) ‖ ciphertext ‖ tag(16)</c>, the length as
/// associated data, and a 12-byte nonce <c>direction(4) ‖ counter(8)</c> that both ends count, so a dropped,
/// reordered, replayed or spliced frame fails authentication. One instance per direction, one thread at a time.
/// </summary>
internal sealed class FrameProtection : IDisposable
{
    public const int LengthSize = 4;
    public const int TagSize = 16;
    public const int Overhead = LengthSize + TagSize;

    /// <summary>Largest plaintext (type byte + body) a frame carries; a larger length is refused before reading it.</summary>
    public const int MaxPlaintext = (1 << 20) + 64;

    private readonly AesGcm _aead;
    private readonly uint _direction;
    private ulong _counter;

    public FrameProtection(ReadOnlySpan<byte> key, uint direction)
    {
        _aead = new AesGcm(key, TagSize);
        _direction = direction;
    }

    /// <summary>Frames sealed or opened so far.</summary>
    public ulong Counter => _counter;

    /// <summary>
    /// Seals in place: <paramref name="frame"/> holds 4 free bytes, then <paramref name="plaintextLength"/> bytes of
    /// plaintext, then room for the tag. Returns the frame length on the wire.
    /// </summary>
    public int Seal(Span<byte> frame, int plaintextLength)
    {
        if (plaintextLength is < 1 or > MaxPlaintext)
        {
            throw new ArgumentOutOfRangeException(nameof(plaintextLength));
        }

        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(plaintextLength + TagSize));
        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        var body = frame.Slice(LengthSize, plaintextLength);
        _aead.Encrypt(nonce, body, body, frame.Slice(LengthSize + plaintextLength, TagSize), frame[..LengthSize]);
        return LengthSize + plaintextLength + TagSize;
    }

    /// <summary>
    /// The sealed length announced by a frame's 4-byte prefix, or -1 when it is out of bounds (the stream is then
    /// abandoned: nothing after a bad length can be trusted).
    /// </summary>
    public static int ReadSealedLength(ReadOnlySpan<byte> prefix)
    {
        uint n = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        return n is < TagSize + 1 or > MaxPlaintext + TagSize ? -1 : (int)n;
    }

    /// <summary>
    /// Opens in place: <paramref name="frame"/> is the whole frame (prefix, ciphertext, tag). Returns the plaintext
    /// length, or -1 when authentication fails.
    /// </summary>
    public int Open(Span<byte> frame)
    {
        int plaintextLength = frame.Length - Overhead;
        if (plaintextLength < 1 || BinaryPrimitives.ReadUInt32BigEndian(frame) != (uint)(plaintextLength + TagSize))
        {
            return -1;
        }

        Span<byte> nonce = stackalloc byte[12];
        NextNonce(nonce);
        var body = frame.Slice(LengthSize, plaintextLength);
        try
        {
            _aead.Decrypt(nonce, body, frame.Slice(LengthSize + plaintextLength, TagSize), body, frame[..LengthSize]);
            return plaintextLength;
        }
        catch (AuthenticationTagMismatchException)
        {
            return -1;
        }
    }

    private void NextNonce(Span<byte> nonce)
    {
        BinaryPrimitives.WriteUInt32BigEndian(nonce, _direction);
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], _counter++);
    }

    public void Dispose() => _aead.Dispose();
}
