using MessagePack;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Store;

/// <summary>
/// The bulky part of a rollout, stored as one LZ4-compressed MessagePack blob beside the rollout's query columns.
/// Keys are positions in a MessagePack array: a later version appends keys and never renumbers, so old blobs still read.
/// </summary>
[MessagePackObject]
public sealed class RolloutBlob
{
    /// <summary>See <see cref="StoredRollout.Tokens"/>.</summary>
    [Key(0)] public int[] Tokens { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.Generated"/>.</summary>
    [Key(1)] public byte[] Generated { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.SamplerLogProbs"/>.</summary>
    [Key(2)] public float[] SamplerLogProbs { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.Messages"/>.</summary>
    [Key(3)] public BlobMessage[] Messages { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.Components"/>.</summary>
    [Key(4)] public Dictionary<string, double> Components { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.Evidence"/>.</summary>
    [Key(5)] public Dictionary<string, string> Evidence { get; set; } = [];
    /// <summary>See <see cref="StoredRollout.GenerateSeconds"/>.</summary>
    [Key(6)] public double GenerateSeconds { get; set; }
    /// <summary>See <see cref="StoredRollout.EnvironmentSeconds"/>.</summary>
    [Key(7)] public double EnvironmentSeconds { get; set; }
    /// <summary>See <see cref="StoredRollout.Advantage"/>.</summary>
    [Key(8)] public double? Advantage { get; set; }
    /// <summary>See <see cref="StoredRollout.TrainerLogProbs"/>.</summary>
    [Key(9)] public float[]? TrainerLogProbs { get; set; }
    /// <summary>See <see cref="StoredRollout.ImportanceWeights"/>.</summary>
    [Key(10)] public float[]? ImportanceWeights { get; set; }
    /// <summary>See <see cref="StoredRollout.TokenMasked"/>.</summary>
    [Key(11)] public byte[]? TokenMasked { get; set; }
    /// <summary>See <see cref="StoredRollout.SequenceMasked"/>.</summary>
    [Key(12)] public bool? SequenceMasked { get; set; }
    /// <summary>See <see cref="StoredRollout.MaskedReason"/>.</summary>
    [Key(13)] public string? MaskedReason { get; set; }
    /// <summary>See <see cref="StoredRollout.TokenTexts"/>.</summary>
    [Key(14)] public string[]? TokenTexts { get; set; }

    // Untrusted-data security: a store file may come from elsewhere (an import, a copied run folder).
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithCompression(MessagePackCompression.Lz4BlockArray).WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>The blob of a rollout.</summary>
    public static byte[] Pack(StoredRollout r) => MessagePackSerializer.Serialize(new RolloutBlob
    {
        Tokens = r.Tokens, Generated = r.Generated, SamplerLogProbs = r.SamplerLogProbs,
        Messages = [.. r.Messages.Select(BlobMessage.From)],
        Components = new(r.Components), Evidence = new(r.Evidence), GenerateSeconds = r.GenerateSeconds, EnvironmentSeconds = r.EnvironmentSeconds,
        Advantage = r.Advantage, TrainerLogProbs = r.TrainerLogProbs, ImportanceWeights = r.ImportanceWeights, TokenMasked = r.TokenMasked,
        SequenceMasked = r.SequenceMasked, MaskedReason = r.MaskedReason, TokenTexts = r.TokenTexts,
    }, Options);

    /// <summary>Reads a blob; <paramref name="where"/> names the rollout in the error when the bytes are not one.</summary>
    public static RolloutBlob Unpack(byte[] bytes, string where)
    {
        try { return MessagePackSerializer.Deserialize<RolloutBlob>(bytes, Options); }
        catch (MessagePackSerializationException e) { throw new InvalidDataException($"{where}: the rollout blob is unreadable ({e.Message})", e); }
    }

    /// <summary>The messages as the record has them; <paramref name="where"/> names the rollout in errors.</summary>
    public IReadOnlyList<Message> ToMessages(string where) => [.. Messages.Select((m, i) => m.ToMessage($"{where}: message {i}"))];
}

/// <summary>
/// One message inside a <see cref="RolloutBlob"/>: the storage form of <see cref="Message"/> (the role as its name,
/// tool calls as a JSON array of {"Id", "Name", "Arguments"}), kept as the first stores wrote it so that they still read.
/// </summary>
[MessagePackObject]
public sealed class BlobMessage
{
    /// <summary>The storage form of a message.</summary>
    public static BlobMessage From(Message m) => new()
    {
        Role = Message.RoleName(m.Role), Content = m.Content, Reasoning = m.Reasoning,
        ToolCallsJson = m.ToolCalls is { Count: > 0 } calls ? StoredToolCalls.ToJson(calls) : null, ToolCallId = m.ToolCallId,
        Name = m.Name,
    };

    /// <summary>The message; an unknown role is an error naming <paramref name="where"/>.</summary>
    public Message ToMessage(string where) =>
        Message.TryParseRole(Role, out var role)
            ? new Message(role, Content, Reasoning, StoredToolCalls.Parse(ToolCallsJson) is { Count: > 0 } calls ? calls : null, ToolCallId, Name)
            : throw new InvalidDataException($"{where}: unknown role '{Role}'");

    /// <summary>system, user, assistant or tool.</summary>
    [Key(0)] public string Role { get; set; } = "";
    /// <summary>See <see cref="Message.Content"/>.</summary>
    [Key(1)] public string Content { get; set; } = "";
    /// <summary>See <see cref="Message.Reasoning"/>.</summary>
    [Key(2)] public string? Reasoning { get; set; }
    /// <summary>The tool calls as a JSON array (see <see cref="StoredToolCalls"/>).</summary>
    [Key(3)] public string? ToolCallsJson { get; set; }
    /// <summary>See <see cref="Message.ToolCallId"/>.</summary>
    [Key(4)] public string? ToolCallId { get; set; }
    /// <summary>See <see cref="Message.Name"/> (added after the first stores; absent in their blobs).</summary>
    [Key(5)] public string? Name { get; set; }
}
