using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Nemotron.Gym.Kernels.Cpu;

public sealed unsafe partial class CpuBackend
{
    // A matrix product packs its right operand into the micro-kernel's panel layout first. For a weight that
    // does not change between calls (every decoding step of a generation round uses the same weights) that
    // work repeats for nothing, and at decode sizes (64 rows) it costs as much as the product. So the packed
    // copy is kept, keyed by where the operand lives and its shape, and trusted while the storage's version
    // (bumped by every write through this backend) is the one it was packed at. A copy is only made the
    // second time an operand is seen unchanged: in training every weight changes each step, so nothing is
    // kept and no memory is spent on operands that are never reused.
    private readonly record struct PackKey(long Offset, int K, int N, bool TransB);

    private sealed class PackedOperand
    {
        public long SeenVersion = -1;
        public long PackedVersion = -1;
        public float[]? Data;
        public int AlignedStart;
    }

    private readonly ConditionalWeakTable<CpuStorage, Dictionary<PackKey, PackedOperand>> _packedOperands = new();

    /// <summary>
    /// The cached packed form of op(B) when it is current, packing it now if this is its second use unchanged;
    /// else null. The pointer is valid while <paramref name="keepAlive"/> is referenced.
    /// </summary>
    private float* PackedWeight(CpuTensor b, float* pb, int k, int n, bool transB, out float[]? keepAlive)
    {
        keepAlive = null;
        if (k <= 0 || n <= 0) return null;
        var byKey = _packedOperands.GetOrCreateValue(b.Storage);
        long version = b.Version;
        PackedOperand entry;
        lock (byKey)
        {
            var key = new PackKey(b.StorageOffset + (pb - b.F), k, n, transB);
            if (!byKey.TryGetValue(key, out entry!)) byKey[key] = entry = new PackedOperand();
        }
        lock (entry)
        {
            if (entry.PackedVersion != version)
            {
                if (entry.SeenVersion != version)
                {
                    entry.SeenVersion = version;
                    entry.Data = null;
                    entry.PackedVersion = -1;
                    return null;
                }
                long length = CpuGemm.PackedBLength(n, k);
                // A pinned array never moves, so a pointer into it stays valid; 16 floats of slack let the
                // packed block start on a 64-byte boundary, which the micro-kernel's aligned loads need.
                var data = GC.AllocateUninitializedArray<float>(checked((int)(length + 16)), pinned: true);
                float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
                int aligned = (int)((64 - ((nint)start & 63)) & 63) / sizeof(float);
                CpuGemm.PackB(start + aligned, pb, transB ? k : n, transB, k, n, _parallel);
                entry.Data = data;
                entry.AlignedStart = aligned;
                entry.PackedVersion = version;
            }
            keepAlive = entry.Data!;
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(keepAlive)) + entry.AlignedStart;
        }
    }
}
