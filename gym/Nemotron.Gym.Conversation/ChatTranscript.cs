namespace Nemotron.Gym.Conversation;

/// <summary>
/// A conversation with the tools offered to the model: what an episode opens with, what SFT data holds, what the chat
/// template renders.
/// </summary>
/// <param name="Messages">The turns, in order (a system message, if any, comes first).</param>
/// <param name="Tools">The tools offered to the model, if any.</param>
public sealed record ChatTranscript(IReadOnlyList<Message> Messages, IReadOnlyList<ToolDefinition>? Tools = null);
