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
        // The same packed operand in bf16 when every value is one (CpuGemm.PackBf16), else null.
        public uint[]? Bf16;
        public int Bf16AlignedStart;
    }

    /// <summary>
    /// Whether a kept packed weight whose every value is a bf16 (the GRPO sampler's rounded copy) is also kept in bf16
    /// and multiplied from there: half the bytes per decoding step, the same result bit for bit (default true; tests
    /// and benchmarks turn it off to compare on one machine).
    /// </summary>
    internal bool Bf16PackedWeights { get; init; } = true;

    /// <summary>Products computed from a bf16 packed weight so far (tests check that the path was taken).</summary>
    internal long Bf16Products { get; private set; }

    private readonly ConditionalWeakTable<CpuStorage, Dictionary<PackKey, PackedOperand>> _packedOperands = new();

    /// <summary>
    /// The cached packed form of op(B) when it is current, packing it now if this is its second use unchanged;
    /// else null. When every value is a bf16 the form is <paramref name="bf16"/> instead (and null is returned).
    /// The pointers are valid while <paramref name="keepAlive"/> is referenced.
    /// </summary>
    private float* PackedWeight(CpuTensor b, float* pb, int k, int n, bool transB, out object? keepAlive, out uint* bf16)
    {
        keepAlive = null;
        bf16 = null;
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
                entry.Bf16 = Bf16PackedWeights && CpuGemm.HasBf16Kernel ? PackInBf16(start + aligned, length, out entry.Bf16AlignedStart) : null;
                if (entry.Bf16 != null) entry.Data = null; // every product reads the bf16 copy
                entry.PackedVersion = version;
            }
            keepAlive = entry;
            if (entry.Bf16 != null)
            {
                bf16 = (uint*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(entry.Bf16)) + entry.Bf16AlignedStart;
                return null;
            }
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(entry.Data!)) + entry.AlignedStart;
        }
    }

    /// <summary>The packed operand re-stored in bf16 (64-byte aligned at the start returned), or null when a value is not a bf16.</summary>
    private static uint[]? PackInBf16(float* packed, long length, out int alignedStart)
    {
        var data = GC.AllocateUninitializedArray<uint>(checked((int)(length / 2 + 16)), pinned: true);
        uint* start = (uint*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
        alignedStart = (int)((64 - ((nint)start & 63)) & 63) / sizeof(uint);
        return CpuGemm.PackBf16(start + alignedStart, packed, length) ? data : null;
    }
}
