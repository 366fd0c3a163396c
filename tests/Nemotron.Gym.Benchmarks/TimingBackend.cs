using System.Diagnostics;
using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Benchmarks;

/// <summary>
/// Wraps a backend and adds up the wall time of each operation (synchronizing after each one). With
/// <paramref name="matMulShapes"/> each matrix-product shape is its own line ("matmul 8192×2304×768 NT").
/// <paramref name="clock"/> reads seconds (default: wall time); a thread's CPU time keeps a single-threaded
/// profile steady on a machine other work shares.
/// </summary>
public sealed class TimingBackend(IComputeBackend inner, bool matMulShapes = false, Func<double>? clock = null) : IComputeBackend
{
    private readonly Dictionary<string, (double Seconds, long Calls)> _times = new();
    private readonly Dictionary<string, double> _flops = new();
    private readonly Func<double> _clock = clock ?? (() => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency);

    public IReadOnlyDictionary<string, (double Seconds, long Calls)> Times => _times;
    /// <summary>Floating-point operations done by each line's calls (matrix products only).</summary>
    public IReadOnlyDictionary<string, double> Flops => _flops;
    public void Reset() { _times.Clear(); _flops.Clear(); Steps = 0; }
    /// <summary>Steps measured, set by the caller.</summary>
    public int Steps { get; set; }

    private T Time<T>(string op, Func<T> f)
    {
        double start = _clock();
        var r = f();
        inner.Synchronize();
        var (s, c) = _times.GetValueOrDefault(op);
        _times[op] = (s + _clock() - start, c + 1);
        return r;
    }

    private void Time(string op, Action f) => Time(op, () => { f(); return 0; });

    public string Name => inner.Name;
    public string Description => inner.Description;
    public void Dispose() => inner.Dispose();
    public bool SupportsBf16Caches => inner.SupportsBf16Caches;
    public bool SupportsSharedPrefixes => inner.SupportsSharedPrefixes;
    public void PrefixAttentionForward(Tensor o, Tensor l, Tensor q, SharedPrefixLayout layout, int c, int h) => Time("prefix_attention", () => inner.PrefixAttentionForward(o, l, q, layout, c, h));
    public void PrefixAttentionBackward(Tensor dq, Tensor dO, Tensor q, Tensor o, Tensor l, SharedPrefixLayout layout, int c, int h) => Time("prefix_attention_backward", () => inner.PrefixAttentionBackward(dq, dO, q, o, l, layout, c, h));
    public Tensor Allocate(DType dtype, long length, string name) => inner.Allocate(dtype, length, name);
    public void Upload(Tensor d, ReadOnlySpan<float> s, long o = 0) { var a = s.ToArray(); Time("upload", () => inner.Upload(d, a, o)); }
    public void Upload(Tensor d, ReadOnlySpan<int> s, long o = 0) { var a = s.ToArray(); Time("upload", () => inner.Upload(d, a, o)); }
    public void Download(Tensor s, Span<float> d, long o = 0) { var a = new float[d.Length]; Time("download", () => inner.Download(s, a, o)); a.CopyTo(d); }
    public void Download(Tensor s, Span<int> d, long o = 0) { var a = new int[d.Length]; Time("download", () => inner.Download(s, a, o)); a.CopyTo(d); }
    public void Copy(Tensor d, long dO, Tensor s, long sO, long n) => Time("copy", () => inner.Copy(d, dO, s, sO, n));
    public void Fill(Tensor t, float v) => Time("fill", () => inner.Fill(t, v));
    public void Synchronize() => inner.Synchronize();
    public void Add(Tensor o, Tensor a, Tensor b, long n) => Time("add", () => inner.Add(o, a, b, n));
    public void Scale(Tensor t, float s, long n) => Time("scale", () => inner.Scale(t, s, n));
    public double SumOfSquares(Tensor t, long n) => Time("sum_of_squares", () => inner.SumOfSquares(t, n));
    public void GeluForward(Tensor o, Tensor i, long n) => Time("gelu", () => inner.GeluForward(o, i, n));
    public void GeluBackward(Tensor di, Tensor dO, Tensor i, long n) => Time("gelu_backward", () => inner.GeluBackward(di, dO, i, n));
    public void MatMul(Tensor c, Tensor a, Tensor b, int m, int n, int k, bool ta, bool tb, float alpha = 1, float beta = 0, int batch = 1, long sa = 0, long sb = 0, long sc = 0)
    {
        string op = matMulShapes ? $"matmul {(batch > 1 ? $"{batch}×" : "")}{m}×{n}×{k} {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')}" : "matmul";
        Time(op, () => inner.MatMul(c, a, b, m, n, k, ta, tb, alpha, beta, batch, sa, sb, sc));
        _flops[op] = _flops.GetValueOrDefault(op) + 2.0 * m * n * k * batch;
    }
    public void EmbeddingForward(Tensor o, Tensor t, Tensor p, Tensor wte, Tensor wpe, int n, int c) => Time("embedding", () => inner.EmbeddingForward(o, t, p, wte, wpe, n, c));
    public void EmbeddingBackward(Tensor dwte, Tensor dwpe, Tensor dO, Tensor t, Tensor p, int n, int c) => Time("embedding_backward", () => inner.EmbeddingBackward(dwte, dwpe, dO, t, p, n, c));
    public void RmsNormForward(Tensor o, Tensor r, Tensor i, Tensor w, int n, int c, float eps) => Time("rmsnorm", () => inner.RmsNormForward(o, r, i, w, n, c, eps));
    public void RmsNormBackward(Tensor di, Tensor dw, Tensor dO, Tensor i, Tensor w, Tensor r, int n, int c) => Time("rmsnorm_backward", () => inner.RmsNormBackward(di, dw, dO, i, w, r, n, c));
    public void AttentionForward(Tensor o, Tensor l, Tensor q, int b, int t, int c, int h) => Time("attention", () => inner.AttentionForward(o, l, q, b, t, c, h));
    public void AttentionBackward(Tensor dq, Tensor dO, Tensor q, Tensor o, Tensor l, int b, int t, int c, int h) => Time("attention_backward", () => inner.AttentionBackward(dq, dO, q, o, l, b, t, c, h));
    public void KvCacheWrite(Tensor k, Tensor v, Tensor q, int b, int t, int c, int m) => Time("kv_cache_write", () => inner.KvCacheWrite(k, v, q, b, t, c, m));
    public void AttentionDecode(Tensor o, Tensor q, Tensor k, Tensor v, Tensor p, int b, int c, int h, int m) => Time("attention_decode", () => inner.AttentionDecode(o, q, k, v, p, b, c, h, m));
    public void AttentionDecode(Tensor o, Tensor q, Tensor k, Tensor v, Tensor p, int b, int c, int h, int m, DecodePrefix prefix) => Time("attention_decode", () => inner.AttentionDecode(o, q, k, v, p, b, c, h, m, prefix));
    public void SoftmaxCrossEntropyForward(Tensor lp, Tensor lse, Tensor? e, Tensor z, Tensor t, int n, int v, int s) => Time("cross_entropy", () => inner.SoftmaxCrossEntropyForward(lp, lse, e, z, t, n, v, s));
    public void SoftmaxCrossEntropyBackward(Tensor dz, Tensor z, Tensor lse, Tensor t, Tensor w, int n, int v, int s) => Time("cross_entropy_backward", () => inner.SoftmaxCrossEntropyBackward(dz, z, lse, t, w, n, v, s));
    public void SampleTokens(Tensor t, Tensor lp, Tensor z, int r, int v, int s, SamplingParams p, ReadOnlySpan<float> u) { var a = u.ToArray(); Time("sample", () => inner.SampleTokens(t, lp, z, r, v, s, p, a)); }
    public void AdamW(Tensor p, Tensor g, Tensor m, Tensor v, long n, AdamWStep s) => Time("adamw", () => inner.AdamW(p, g, m, v, n, s));
}
