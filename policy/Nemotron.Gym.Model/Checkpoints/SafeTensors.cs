using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Model.Checkpoints;

/// <summary>One named fp32 tensor of a safetensors file.</summary>
public sealed record NamedTensor(string Name, int[] Shape, float[] Data);

/// <summary>
/// The safetensors format (what PyTorch and Hugging Face load): an 8-byte little-endian header length,
/// a JSON header mapping each name to {dtype, shape, data_offsets} plus optional string "__metadata__",
/// then the raw little-endian tensor bytes. We write F32 only.
/// </summary>
public static class SafeTensors
{
    /// <summary>Writes tensors in the given order, with string metadata.</summary>
    public static void Write(string path, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        long offset = 0;
        foreach (var t in list)
        {
            long expected = t.Shape.Aggregate(1L, (a, b) => a * b);
            if (expected != t.Data.Length) throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(",", t.Shape)}] holds {expected} elements, data has {t.Data.Length}");
            long bytes = (long)t.Data.Length * 4;
            header[t.Name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8; // keep the data 8-byte aligned
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        fs.Write(len);
        fs.Write(json);
        for (int i = json.Length; i < padded; i++) fs.WriteByte((byte)' ');
        foreach (var t in list)
        {
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writer assumes a little-endian machine");
            fs.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        }
    }

    /// <summary>A JSON array of integers, each passing <paramref name="valid"/> and fitting an int; else an error naming the tensor and field.</summary>
    private static long[] Integers(JsonNode? node, string path, string tensor, string field, Func<long, bool> valid, string expected)
    {
        if (node is not JsonArray array) throw new InvalidDataException($"{path}: tensor '{tensor}': '{field}' is missing or not a list of {expected}");
        var values = new long[array.Count];
        for (int i = 0; i < array.Count; i++)
            values[i] = array[i] is JsonValue v && v.TryGetValue(out long n) && valid(n) && n <= int.MaxValue ? n
                : throw new InvalidDataException($"{path}: tensor '{tensor}': {field}[{i}] is {array[i]?.ToJsonString() ?? "null"}; expected {expected}");
        return values;
    }

    /// <summary>Reads every tensor and the metadata; any inconsistency is an error naming the file.</summary>
    public static (Dictionary<string, NamedTensor> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        byte[] all;
        try { all = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidDataException($"{path}: cannot read ({e.Message})", e); }
        if (all.Length < 8) throw new InvalidDataException($"{path}: too short for a safetensors file ({all.Length} bytes)");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(all);
        if (headerLen > (ulong)(all.Length - 8)) throw new InvalidDataException($"{path}: header length {headerLen} exceeds the file ({all.Length} bytes)");
        JsonObject header;
        try { header = JsonNode.Parse(Encoding.UTF8.GetString(all, 8, (int)headerLen)) as JsonObject ?? throw new InvalidDataException($"{path}: header is not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: header is not valid JSON ({e.Message})", e); }
        long dataStart = 8 + (long)headerLen, dataLen = all.Length - dataStart;
        var tensors = new Dictionary<string, NamedTensor>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is not JsonObject m) throw new InvalidDataException($"{path}: '__metadata__' is not an object of strings");
                foreach (var (k, v) in m)
                    metadata[k] = v is JsonValue sv && sv.TryGetValue(out string? text) ? text : throw new InvalidDataException($"{path}: __metadata__.{k} is not a string");
                continue;
            }
            if (node is not JsonObject info) throw new InvalidDataException($"{path}: entry '{name}' is not an object");
            string dtype = info["dtype"] is JsonValue dv && dv.TryGetValue(out string? d) ? d : throw new InvalidDataException($"{path}: tensor '{name}': 'dtype' is missing or not a string");
            if (dtype != "F32") throw new InvalidDataException($"{path}: tensor '{name}' has dtype {dtype}; only F32 is supported");
            var shape = Integers(info["shape"], path, name, "shape", n => n >= 0, "non-negative integers").Select(x => (int)x).ToArray();
            var offs = Integers(info["data_offsets"], path, name, "data_offsets", n => n >= 0, "two non-negative integers [begin, end]");
            if (offs.Length != 2) throw new InvalidDataException($"{path}: tensor '{name}': data_offsets has {offs.Length} entries; expected two, [begin, end]");
            long begin = offs[0], end = offs[1];
            // The element count of a hostile header can overflow; anything past the file is refused before it is multiplied out.
            long count = 1;
            foreach (int dim in shape)
                if (dim != 0 && count > dataLen / 4 / dim) { count = -1; break; }
                else count *= dim;
            if (count < 0 || begin > end || end > dataLen || end - begin != count * 4)
                throw new InvalidDataException($"{path}: tensor '{name}' offsets [{begin}, {end}) do not fit its shape [{string.Join(",", shape)}] or the file ({dataLen} data bytes)");
            var data = new float[count];
            MemoryMarshal.Cast<byte, float>(all.AsSpan((int)(dataStart + begin), (int)(end - begin))).CopyTo(data);
            tensors[name] = new NamedTensor(name, shape, data);
        }
        return (tensors, metadata);
    }
}
