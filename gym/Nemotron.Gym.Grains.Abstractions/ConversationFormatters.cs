using System.Text.Json.Nodes;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Grains;

/// <summary>
/// The conversation contract (messages, tool calls, tool definitions, assistant turns, grades) on the wire: grain calls
/// carry those types as they are, through these formatters, so no second message type exists between the trainer and
/// the silos. The contract itself references nothing (not even MessagePack), hence formatters rather than attributes.
/// Each value is a MessagePack array; JSON objects (tool arguments, parameter schemas) travel as JSON text.
/// </summary>
public static class ConversationFormatters
{
    /// <summary>The conversation types these formatters carry.</summary>
    public static readonly IReadOnlySet<Type> Types = new HashSet<Type>
    {
        typeof(Message), typeof(ToolCall), typeof(ToolDefinition), typeof(AssistantTurn), typeof(Grade), typeof(GroupMember),
    };

    /// <summary>The resolver: these formatters first, then MessagePack's standard ones.</summary>
    public static readonly IFormatterResolver Resolver = CompositeResolver.Create(
        [new MessageFormatter(), new ToolCallFormatter(), new ToolDefinitionFormatter(), new AssistantTurnFormatter(), new GradeFormatter(), new GroupMemberFormatter()],
        [StandardResolver.Instance]);

    private static string? ReadNullableString(ref MessagePackReader reader) => reader.TryReadNil() ? null : reader.ReadString();

    private static string ReadString(ref MessagePackReader reader) =>
        reader.ReadString() ?? throw new MessagePackSerializationException("expected a string, found nil");

    private static JsonObject ReadJsonObject(ref MessagePackReader reader, string what)
    {
        string text = ReadString(ref reader);
        try { return JsonNode.Parse(text) as JsonObject ?? throw new MessagePackSerializationException($"{what}: not a JSON object"); }
        catch (System.Text.Json.JsonException e) { throw new MessagePackSerializationException($"{what}: not valid JSON ({e.Message})", e); }
    }

    private static void ExpectArray(ref MessagePackReader reader, int atLeast, string type)
    {
        int n = reader.ReadArrayHeader();
        if (n < atLeast) throw new MessagePackSerializationException($"{type}: expected {atLeast} fields, found {n}");
    }

    private static void WriteList<T>(ref MessagePackWriter writer, IReadOnlyList<T>? list, IMessagePackFormatter<T> item, MessagePackSerializerOptions options)
    {
        if (list == null) { writer.WriteNil(); return; }
        writer.WriteArrayHeader(list.Count);
        foreach (var x in list) item.Serialize(ref writer, x, options);
    }

    private static List<T>? ReadList<T>(ref MessagePackReader reader, IMessagePackFormatter<T> item, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil()) return null;
        int n = reader.ReadArrayHeader();
        var list = new List<T>(Math.Min(n, 1024));
        options.Security.DepthStep(ref reader);
        try { for (int i = 0; i < n; i++) list.Add(item.Deserialize(ref reader, options)); }
        finally { reader.Depth--; }
        return list;
    }

    private sealed class ToolCallFormatter : IMessagePackFormatter<ToolCall>
    {
        public void Serialize(ref MessagePackWriter writer, ToolCall value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(3);
            writer.Write(value.Id);
            writer.Write(value.Name);
            writer.Write(value.ArgumentsJson);
        }

        public ToolCall Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            ExpectArray(ref reader, 3, nameof(ToolCall));
            return new ToolCall(ReadString(ref reader), ReadString(ref reader), ReadJsonObject(ref reader, "tool call arguments"));
        }
    }

    private sealed class ToolDefinitionFormatter : IMessagePackFormatter<ToolDefinition>
    {
        public void Serialize(ref MessagePackWriter writer, ToolDefinition value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(3);
            writer.Write(value.Name);
            writer.Write(value.Description);
            writer.Write(value.Parameters.ToJsonString(JsonText.Compact));
        }

        public ToolDefinition Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            ExpectArray(ref reader, 3, nameof(ToolDefinition));
            return new ToolDefinition(ReadString(ref reader), ReadString(ref reader), ReadJsonObject(ref reader, "tool parameters"));
        }
    }

    private sealed class MessageFormatter : IMessagePackFormatter<Message>
    {
        private static readonly ToolCallFormatter Calls = new();

        public void Serialize(ref MessagePackWriter writer, Message value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(6);
            writer.Write((int)value.Role);
            writer.Write(value.Content);
            writer.Write(value.Reasoning);
            WriteList(ref writer, value.ToolCalls, Calls, options);
            writer.Write(value.ToolCallId);
            writer.Write(value.Name);
        }

        public Message Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            ExpectArray(ref reader, 6, nameof(Message));
            int role = reader.ReadInt32();
            if (!Enum.IsDefined((Role)role)) throw new MessagePackSerializationException($"message: unknown role {role}");
            return new Message((Role)role, ReadString(ref reader), ReadNullableString(ref reader), ReadList(ref reader, Calls, options),
                ReadNullableString(ref reader), ReadNullableString(ref reader));
        }
    }

    private sealed class AssistantTurnFormatter : IMessagePackFormatter<AssistantTurn>
    {
        private static readonly ToolCallFormatter Calls = new();

        public void Serialize(ref MessagePackWriter writer, AssistantTurn value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(6);
            writer.Write(value.Text);
            writer.Write(value.Content);
            writer.Write(value.Reasoning);
            WriteList(ref writer, value.ToolCalls, Calls, options);
            writer.WriteArrayHeader(value.FormatErrors.Count);
            foreach (var e in value.FormatErrors) writer.Write(e);
            writer.Write(value.Truncated);
        }

        public AssistantTurn Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            ExpectArray(ref reader, 6, nameof(AssistantTurn));
            string text = ReadString(ref reader), content = ReadString(ref reader);
            string? reasoning = ReadNullableString(ref reader);
            var calls = ReadList(ref reader, Calls, options) ?? [];
            int n = reader.ReadArrayHeader();
            var errors = new List<string>(Math.Min(n, 1024));
            for (int i = 0; i < n; i++) errors.Add(ReadString(ref reader));
            return new AssistantTurn(text, content, reasoning, calls, errors, reader.ReadBoolean());
        }
    }

    private sealed class GradeFormatter : IMessagePackFormatter<Grade>
    {
        public void Serialize(ref MessagePackWriter writer, Grade value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(5);
            writer.Write(value.Reward);
            writer.WriteMapHeader(value.Components.Count);
            foreach (var (k, v) in value.Components) { writer.Write(k); writer.Write(v); }
            writer.Write(value.Reason);
            writer.WriteMapHeader(value.Evidence.Count);
            foreach (var (k, v) in value.Evidence) { writer.Write(k); writer.Write(v); }
            writer.Write(value.MaskReason);
        }

        public Grade Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            int fields = reader.ReadArrayHeader();
            if (fields < 4) throw new MessagePackSerializationException($"{nameof(Grade)}: expected 4 or 5 fields, found {fields}");
            double reward = reader.ReadDouble();
            int nc = reader.ReadMapHeader();
            var components = new Dictionary<string, double>(Math.Min(nc, 1024));
            for (int i = 0; i < nc; i++) components[ReadString(ref reader)] = reader.ReadDouble();
            string reason = ReadString(ref reader);
            int ne = reader.ReadMapHeader();
            var evidence = new Dictionary<string, string>(Math.Min(ne, 1024));
            for (int i = 0; i < ne; i++) evidence[ReadString(ref reader)] = ReadString(ref reader);
            // The fifth field (the mask reason) came later; a grade written without it is a verdict.
            string? maskReason = fields >= 5 && !reader.TryReadNil() ? reader.ReadString() : null;
            for (int i = 5; i < fields; i++) reader.Skip();
            return new Grade(reward, components, reason, evidence) { MaskReason = maskReason };
        }
    }

    private sealed class GroupMemberFormatter : IMessagePackFormatter<GroupMember>
    {
        private static readonly MessageFormatter Messages = new();
        private static readonly GradeFormatter Grades = new();

        public void Serialize(ref MessagePackWriter writer, GroupMember value, MessagePackSerializerOptions options)
        {
            writer.WriteArrayHeader(4);
            writer.Write(value.SampleIndex);
            WriteList(ref writer, value.Conversation, Messages, options);
            Grades.Serialize(ref writer, value.Grade, options);
            writer.Write(value.Truncated);
        }

        public GroupMember Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            ExpectArray(ref reader, 4, nameof(GroupMember));
            int sample = reader.ReadInt32();
            var conversation = ReadList(ref reader, Messages, options) ?? throw new MessagePackSerializationException("group member: conversation is nil");
            var grade = Grades.Deserialize(ref reader, options);
            return new GroupMember(sample, conversation, grade, reader.ReadBoolean());
        }
    }
}
