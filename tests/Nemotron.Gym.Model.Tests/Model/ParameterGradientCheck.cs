using Nemotron.Gym.Model;

namespace Nemotron.Gym.Model.Tests;

/// <summary>The finite-difference check of a model's parameter gradient that the model tests share.</summary>
internal static class ParameterGradientCheck
{
    /// <summary>
    /// For <paramref name="perSlot"/> random entries of every parameter slot, compares the analytic gradient
    /// <paramref name="grad"/> with central differences of <paramref name="loss"/> (step 1e-2), relative to the slot's
    /// largest gradient; restores the weights after each probe.
    /// </summary>
    public static void AssertMatchesFiniteDifferences(GptModel model, float[] grad, Func<double> loss, int perSlot, int seed)
    {
        var p = model.DownloadParameters();
        var rng = new Random(seed);
        const float h = 1e-2f;
        foreach (var slot in model.Layout.Slots)
        {
            double scale = 1e-4;
            for (long i = 0; i < slot.Length; i++) scale = Math.Max(scale, Math.Abs(grad[slot.Offset + i]));
            for (int k = 0; k < perSlot; k++)
            {
                long idx = slot.Offset + rng.NextInt64(slot.Length);
                float orig = p[idx];
                p[idx] = orig + h; model.UploadParameters(p); double up = loss();
                p[idx] = orig - h; model.UploadParameters(p); double down = loss();
                p[idx] = orig; model.UploadParameters(p);
                double numeric = (up - down) / (2 * h);
                double err = Math.Abs(numeric - grad[idx]) / scale;
                Assert.True(err < 3e-2, $"{slot.Name}[{idx - slot.Offset}]: analytic {grad[idx]:G5} numeric {numeric:G5} (relative {err:G3})");
            }
        }
    }
}
