namespace Nemotron.Gym.Conversation;

/// <summary>
/// One finished rollout of a group (the G rollouts of one prompt), as a group grader sees it: the whole conversation,
/// the grade its own episode gave, and whether its last turn was cut off at the length limit.
/// </summary>
/// <param name="SampleIndex">Which of the group's rollouts this is.</param>
/// <param name="Conversation">The opening, every assistant turn and every environment reply, in order.</param>
/// <param name="Grade">The episode's own grade (a provisional one for environments that grade groups).</param>
/// <param name="Truncated">The last turn stopped at the length limit.</param>
public sealed record GroupMember(int SampleIndex, IReadOnlyList<Message> Conversation, Grade Grade, bool Truncated);
