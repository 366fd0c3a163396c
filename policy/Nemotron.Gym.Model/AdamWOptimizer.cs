using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

/// <summary>AdamW hyper-parameters (the learning rate comes from the schedule at each step).</summary>
public sealed record AdamWSettings(float Beta1 = 0.9f, float Beta2 = 0.95f, float Epsilon = 1e-8f, float WeightDecay = 0.1f);

/// <summary>
/// AdamW over the model's flat parameter buffer, with fp32 moments on the model's device. Weight decay
/// applies to matrices and embeddings, not to norm gains.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly GptModel _model;
    private readonly Tensor _m, _v;
    private readonly (long Offset, long Length, bool Decay)[] _runs;

    /// <summary>Zero moments at step 0.</summary>
    public AdamWOptimizer(GptModel model, AdamWSettings settings)
    {
        _model = model;
        Settings = settings;
        _m = model.Backend.Allocate(DType.F32, model.Layout.Total, "adam.m");
        _v = model.Backend.Allocate(DType.F32, model.Layout.Total, "adam.v");
        // Merge neighbouring slots with the same decay flag into runs: fewer, longer kernel calls.
        var runs = new List<(long, long, bool)>();
        foreach (var s in model.Layout.Slots)
        {
            if (runs.Count > 0 && runs[^1].Item3 == s.Decay && runs[^1].Item1 + runs[^1].Item2 == s.Offset)
                runs[^1] = (runs[^1].Item1, runs[^1].Item2 + s.Length, s.Decay);
            else runs.Add((s.Offset, s.Length, s.Decay));
        }
        _runs = runs.ToArray();
    }

    /// <summary>Betas, epsilon, weight decay.</summary>
    public AdamWSettings Settings { get; }
    /// <summary>Updates taken so far.</summary>
    public int Step { get; private set; }
    /// <summary>The parameter layout the moments follow.</summary>
    public ParameterLayout Layout => _model.Layout;

    /// <summary>One update with the current gradients.</summary>
    public void Update(float learningRate)
    {
        Step++;
        var be = _model.Backend;
        foreach (var (offset, length, decay) in _runs)
        {
            var step = new AdamWStep(learningRate, Settings.Beta1, Settings.Beta2, Settings.Epsilon, decay ? Settings.WeightDecay : 0f, Step);
            be.AdamW(_model.Parameters.Slice(offset, length), _model.Gradients.Slice(offset, length), _m.Slice(offset, length), _v.Slice(offset, length), length, step);
        }
    }

    /// <summary>The moments, for checkpoints.</summary>
    public (float[] M, float[] V) DownloadState()
    {
        var m = new float[_m.Length];
        var v = new float[_v.Length];
        _model.Backend.Download(_m, m);
        _model.Backend.Download(_v, v);
        return (m, v);
    }

    /// <summary>Restores the moments and step count.</summary>
    public void UploadState(float[] m, float[] v, int step)
    {
        _model.Backend.Upload(_m, m);
        _model.Backend.Upload(_v, v);
        Step = step;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
    }
}
