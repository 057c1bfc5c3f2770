using System.Security.Cryptography;
using ClusterSync.Protocol;

namespace ClusterSync.Security;

/// <summary>
/// AES-256-GCM sealing of one sender's datagrams. The header is the associated data; the nonce is
/// sender id (16 bits) ‖ epoch (low 16 bits) ‖ sequence (64 bits); the key is bound to (sender, epoch),
/// so a nonce never repeats under one key. One instance per thread.
/// </summary>
internal sealed class PacketProtection : IDisposable
{
    public const int TagSize = 16;
    private readonly AesGcm? _aead;

    private PacketProtection(AesGcm? aead) => _aead = aead;

    public static PacketProtection Create(ClusterKey? key, ushort sender, ulong epoch)
        => new(key is null ? null : new AesGcm(key.DeriveSenderKey(sender, epoch), TagSize));

    public bool Sealed => _aead is not null;

    /// <summary>Bytes a sealed datagram adds to its body.</summary>
    public int Overhead => PacketHeader.Size + (_aead is null ? 0 : TagSize);

    private static void Nonce(Span<byte> nonce, ReadOnlySpan<byte> header)
    {
        // sender (header[4..6]) ‖ low 16 bits of epoch (header[14..16]) ‖ sequence (header[16..24])
        header.Slice(4, 2).CopyTo(nonce);
        header.Slice(14, 2).CopyTo(nonce[2..]);
        header.Slice(16, 8).CopyTo(nonce[4..]);
    }

    /// <summary>
    /// Seals in place: <paramref name="datagram"/> holds the header and then <paramref name="bodyLength"/> bytes of
    /// plaintext; returns the datagram length (header + ciphertext + tag).
    /// </summary>
    public int Seal(Span<byte> datagram, int bodyLength)
    {
        if (_aead is null)
        {
            return PacketHeader.Size + bodyLength;
        }

        Span<byte> nonce = stackalloc byte[12];
        var header = datagram[..PacketHeader.Size];
        Nonce(nonce, header);
        var body = datagram.Slice(PacketHeader.Size, bodyLength);
        _aead.Encrypt(nonce, body, body, datagram.Slice(PacketHeader.Size + bodyLength, TagSize), header);
        return PacketHeader.Size + bodyLength + TagSize;
    }

    /// <summary>Opens in place; returns the plaintext body length, or -1 when authentication fails.</summary>
    public int Open(Span<byte> datagram)
    {
        if (_aead is null)
        {
            return datagram.Length - PacketHeader.Size;
        }

        int bodyLength = datagram.Length - PacketHeader.Size - TagSize;
        if (bodyLength < 0)
        {
            return -1;
        }

        Span<byte> nonce = stackalloc byte[12];
        var header = datagram[..PacketHeader.Size];
        Nonce(nonce, header);
        var body = datagram.Slice(PacketHeader.Size, bodyLength);
        try
        {
            _aead.Decrypt(nonce, body, datagram.Slice(PacketHeader.Size + bodyLength, TagSize), body, header);
            return bodyLength;
        }
        catch (AuthenticationTagMismatchException)
        {
            return -1;
        }
    }

    public void Dispose() => _aead?.Dispose();
}
