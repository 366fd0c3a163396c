namespace Nemotron.Gym.Model;

/// <summary>bfloat16 rounding of fp32 values (round to nearest, ties to even), kept in fp32 storage.</summary>
public static class Bf16
{
    /// <summary>Rounds every value in place to the nearest bfloat16.</summary>
    public static void Round(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = Round(values[i]);
    }

    /// <summary>The nearest bfloat16 to <paramref name="x"/>, as a float.</summary>
    public static float Round(float x)
    {
        if (float.IsNaN(x)) return x;
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint lsb = (bits >> 16) & 1;
        bits += 0x7FFFu + lsb;
        return BitConverter.UInt32BitsToSingle(bits & 0xFFFF0000u);
    }
}
