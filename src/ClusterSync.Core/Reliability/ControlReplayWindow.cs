namespace ClusterSync.Reliability;

/// <summary>
/// Anti-replay for control messages (acks, heartbeats, gone): the classic sliding 64-sequence bitmap of IPsec.
/// Control messages are idempotent, so one that arrives more than 64 behind is simply dropped.
/// </summary>
internal sealed class ControlReplayWindow
{
    private ulong _highest;
    private ulong _bitmap; // bit i: _highest - i was seen

    public bool Check(ulong seq)
    {
        if (seq > _highest)
        {
            return true;
        }

        ulong diff = _highest - seq;
        return diff < 64 && (_bitmap & (1UL << (int)diff)) == 0;
    }

    public void Mark(ulong seq)
    {
        if (seq > _highest)
        {
            ulong shift = seq - _highest;
            _bitmap = shift >= 64 ? 1UL : (_bitmap << (int)shift) | 1UL;
            _highest = seq;
        }
        else
        {
            _bitmap |= 1UL << (int)(_highest - seq);
        }
    }

    public void Reset()
    {
        _highest = 0;
        _bitmap = 0;
    }
}
