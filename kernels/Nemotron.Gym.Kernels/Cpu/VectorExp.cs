using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Nemotron.Gym.Kernels.Cpu;

/// <summary>
/// exp over 16 floats at once, in single precision throughout (the library's vector exp widens to double,
/// which costs twice the work for accuracy fp32 results do not keep). e^x = 2^n · e^r with
/// n = round(x·log₂e) and r = x − n·ln 2 (ln 2 split in two parts so r stays exact), |r| ≤ ln 2 / 2, where a
/// degree-6 Taylor polynomial is within about 1 ulp; 2^n is built in the exponent bits. Inputs are clamped
/// to [−87.3, 88.7], the range whose result is a normal float: below it the result is about 1e−38 rather
/// than a denormal or 0, which no softmax or logistic function here can tell apart.
/// </summary>
internal static class VectorExp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87.3f)), Vector512.Create(88.7f));
        var n = Vector512.Round(x * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1f / 720f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return p * scale;
    }
}
