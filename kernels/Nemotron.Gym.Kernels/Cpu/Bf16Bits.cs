using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>
/// bfloat16 as the top 16 bits of an fp32: rounding to nearest with ties to even (NaN stays a NaN), and the exact
/// widening back. The CPU backend's <see cref="DType.BF16"/> caches are written and read through these.
/// </summary>
internal static unsafe class Bf16Bits
{
    /// <summary>The bf16 nearest to <paramref name="x"/> (ties to the even one), as its bits.</summary>
    public static ushort FromFloat(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) return (ushort)((bits >> 16) | 0x40); // quiet NaN, sign kept
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    /// <summary>The fp32 a bf16 stands for (exact).</summary>
    public static float ToFloat(ushort h) => BitConverter.UInt32BitsToSingle((uint)h << 16);

    /// <summary>Rounds <paramref name="source"/> into <paramref name="destination"/>.</summary>
    public static void FromFloats(float* source, ushort* destination, long count)
    {
        for (long i = 0; i < count; i++) destination[i] = FromFloat(source[i]);
    }

    /// <summary>Widens <paramref name="count"/> bf16 values into floats.</summary>
    public static void ToFloats(ushort* source, float* destination, long count)
    {
        long i = 0;
        if (Avx512F.IsSupported)
            for (; i + 16 <= count; i += 16) Vector512.Store(Load16(source + i), destination + i);
        for (; i < count; i++) destination[i] = ToFloat(source[i]);
    }

    /// <summary>16 bf16 values widened into one register (AVX-512 only).</summary>
    public static Vector512<float> Load16(ushort* source) =>
        Vector512.ShiftLeft(Avx512F.ConvertToVector512UInt32(Vector256.Load(source)), 16).AsSingle();
}
