using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Nemotron.Gym.Conversation;

/// <summary>JSON as people read it in data files: "+" and "&lt;" stay as they are, not \u002B.</summary>
public static class JsonText
{
    /// <summary>Compact, readable.</summary>
    public static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Indented, readable.</summary>
    public static readonly JsonSerializerOptions Indented = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = true };

    /// <summary>One line of JSONL.</summary>
    public static string Line(JsonNode node) => node.ToJsonString(Compact);
}
