using Nemotron.Gym.Kernels;

namespace Nemotron.Gym.Model;

/// <summary>
/// Keys and values of every layer for <see cref="Batch"/> sequences of up to <see cref="MaxSeqLen"/> tokens,
/// laid out [batch, maxSeqLen, width] per layer, so one sequence's cache is a contiguous block that can be
/// copied (to fan one prompt out to G rollouts) or moved (to compact finished rows away).
/// </summary>
public sealed class KvCache : IDisposable
{
    /// <summary>Allocates the cache on the model's backend, of the model's <see cref="GptModel.CacheType"/>.</summary>
    public KvCache(GptModel model, int batch, int maxSeqLen)
    {
        if (maxSeqLen > model.Config.Context)
            throw new ArgumentException($"kv cache of {maxSeqLen} positions exceeds the model context of {model.Config.Context}");
        Backend = model.Backend;
        Batch = batch;
        MaxSeqLen = maxSeqLen;
        Width = model.Config.Width;
        long len = (long)batch * maxSeqLen * Width;
        Keys = Enumerable.Range(0, model.Config.Layers).Select(l => Backend.Allocate(model.CacheType, len, $"cache.k{l}")).ToArray();
        Values = Enumerable.Range(0, model.Config.Layers).Select(l => Backend.Allocate(model.CacheType, len, $"cache.v{l}")).ToArray();
    }

    /// <summary>The device.</summary>
    public IComputeBackend Backend { get; }
    /// <summary>Rows (sequences).</summary>
    public int Batch { get; }
    /// <summary>Positions per row.</summary>
    public int MaxSeqLen { get; }
    /// <summary>Channels.</summary>
    public int Width { get; }
    /// <summary>Per-layer keys.</summary>
    public Tensor[] Keys { get; }
    /// <summary>Per-layer values.</summary>
    public Tensor[] Values { get; }

    /// <summary>Copies the first <paramref name="length"/> positions of row <paramref name="sourceRow"/> of
    /// <paramref name="source"/> into row <paramref name="destinationRow"/> of this cache.</summary>
    public void CopyRow(int destinationRow, KvCache source, int sourceRow, int length)
    {
        long count = (long)length * Width;
        for (int l = 0; l < Keys.Length; l++)
        {
            Backend.Copy(Keys[l], (long)destinationRow * MaxSeqLen * Width, source.Keys[l], (long)sourceRow * source.MaxSeqLen * Width, count);
            Backend.Copy(Values[l], (long)destinationRow * MaxSeqLen * Width, source.Values[l], (long)sourceRow * source.MaxSeqLen * Width, count);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
