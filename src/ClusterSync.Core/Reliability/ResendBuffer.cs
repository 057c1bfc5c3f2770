namespace ClusterSync.Reliability;

/// <summary>
/// The sender's bounded memory of sealed data datagrams, indexed by sequence. A NACK for a sequence still here
/// resends the identical bytes; one that has been overwritten is answered with Gone (the peer needs a resync).
/// Used by the sender thread only.
/// </summary>
internal sealed class ResendBuffer
{
    private readonly byte[] _data;
    private readonly int[] _lengths;
    private readonly ulong[] _sequences;
    private readonly int _slotSize;

    public ResendBuffer(int slots, int slotSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 16);
        _slotSize = slotSize;
        _data = GC.AllocateUninitializedArray<byte>(checked(slots * slotSize));
        _lengths = new int[slots];
        _sequences = new ulong[slots];
    }

    public int Slots => _lengths.Length;

    /// <summary>The slot where the datagram of <paramref name="seq"/> is built; it replaces whatever was there.</summary>
    public Memory<byte> Rent(ulong seq)
    {
        int i = (int)(seq % (ulong)_lengths.Length);
        _sequences[i] = 0;
        return _data.AsMemory(i * _slotSize, _slotSize);
    }

    public void Commit(ulong seq, int length)
    {
        int i = (int)(seq % (ulong)_lengths.Length);
        _lengths[i] = length;
        _sequences[i] = seq;
    }

    public bool TryGet(ulong seq, out ReadOnlyMemory<byte> datagram)
    {
        int i = (int)(seq % (ulong)_lengths.Length);
        if (_sequences[i] != seq || seq == 0)
        {
            datagram = default;
            return false;
        }

        datagram = _data.AsMemory(i * _slotSize, _lengths[i]);
        return true;
    }

    /// <summary>The oldest sequence still held, given the newest one sent.</summary>
    public ulong OldestHeld(ulong newest) => newest < (ulong)_lengths.Length ? 1 : newest - (ulong)_lengths.Length + 1;
}
