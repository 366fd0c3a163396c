using MessagePack;

namespace Nemotron.Gym.Store;

/// <summary>The bulky part of a rollout, stored as one MessagePack blob (LZ4-compressed) beside its query columns.</summary>
[MessagePackObject]
public sealed class RolloutBlob
{
    [Key(0)] public int[] Tokens { get; set; } = [];
    [Key(1)] public byte[] Generated { get; set; } = [];
    [Key(2)] public float[] SamplerLogProbs { get; set; } = [];
    [Key(3)] public List<string?[]> Messages { get; set; } = [];
    [Key(4)] public Dictionary<string, double> Components { get; set; } = [];
    [Key(5)] public Dictionary<string, string> Evidence { get; set; } = [];
    [Key(6)] public double GenerateSeconds { get; set; }
    [Key(7)] public double EnvironmentSeconds { get; set; }

    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithCompression(MessagePackCompression.Lz4BlockArray).WithSecurity(MessagePackSecurity.UntrustedData);

    public static byte[] Pack(StoredRollout r) => MessagePackSerializer.Serialize(new RolloutBlob
    {
        Tokens = r.Tokens, Generated = r.Generated, SamplerLogProbs = r.SamplerLogProbs,
        Messages = r.Messages.Select(m => new[] { m.Role, m.Content, m.Reasoning, m.ToolCallsJson, m.ToolCallId }).ToList(),
        Components = new(r.Components), Evidence = new(r.Evidence), GenerateSeconds = r.GenerateSeconds, EnvironmentSeconds = r.EnvironmentSeconds,
    }, Options);

    public static RolloutBlob Unpack(byte[] bytes, string where)
    {
        try { return MessagePackSerializer.Deserialize<RolloutBlob>(bytes, Options); }
        catch (MessagePackSerializationException e) { throw new InvalidDataException($"{where}: the rollout blob is unreadable ({e.Message})", e); }
    }
}
