using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Grains;

/// <summary>
/// One rollout's episode: opened from a task, stepped with each assistant turn, graded once. Its lifecycle is a
/// state machine (<see cref="EpisodeState"/>); a call that does not fit the state fails with the state named.
/// Key: "{run}/{step}/{round}/{task}/{sample}[#attempt]".
/// </summary>
public interface IEpisodeGrain : IGrainWithStringKey
{
    /// <summary>Opens the episode (Created → Opened → AwaitingModel) and returns what the model answers first.</summary>
    Task<EpisodeOpening> Open(EpisodeSpec spec);
    /// <summary>Passes an assistant turn, parsed by the trainer (AwaitingModel → Stepping → AwaitingModel or AwaitingGrade). <paramref name="final"/>: no reply will be used.</summary>
    Task<EpisodeReplyMessage> Step(AssistantTurn turn, bool final);
    /// <summary>Grades (AwaitingGrade → Grading → Done); a failing grader gives reward 0 with its reason.</summary>
    Task<EpisodeGrade> Grade(bool truncated);
    /// <summary>The current state.</summary>
    Task<EpisodeState> GetState();
}

/// <summary>
/// An environment as the silos host it (a stateless worker: any silo, several activations). Plugins are loaded
/// once per silo and shared by every episode there.
/// </summary>
public interface IEnvironmentGrain : IGrainWithStringKey
{
    /// <summary>The environment's description (key: its name).</summary>
    Task<EnvironmentInfo> Describe();
    /// <summary>The task ids of a task set.</summary>
    Task<IReadOnlyList<string>> ListTasks(TaskSetSpec taskSet);
    /// <summary>Whether the environment (with the task set's settings) grades whole groups of rollouts together.</summary>
    Task<bool> GradesGroups(TaskSetSpec taskSet);
    /// <summary>
    /// The final grades of a group of rollouts of one task, one per member in order, from an environment that grades
    /// groups (the members' own grades, unchanged, from one that does not). A failing grader masks the members with
    /// its reason. Stateless: any silo can answer, and calling it again for a replayed group is safe. A judge may take
    /// minutes over a group, so the call waits longer than Orleans' 30-second default; the host's group limit
    /// (<c>EnvironmentPoolOptions.GroupCallTimeout</c>) ends it first.
    /// </summary>
    [ResponseTimeout("00:30:00")]
    Task<IReadOnlyList<Grade>> GradeGroup(TaskSetSpec taskSet, string taskId, IReadOnlyList<GroupMember> members);
}

/// <summary>
/// A run's lifecycle (Created → Running ⇄ Paused → Completed | Failed), persisted so that a host that restarts
/// finds where the run was. Key: the run id.
/// </summary>
public interface IRunGrain : IGrainWithStringKey
{
    /// <summary>Registers the run (idempotent for the same config); a different config for an existing run is refused.</summary>
    Task<RunInfo> Create(string configYaml, int totalSteps);
    /// <summary>
    /// Discards whatever is stored for this run id and registers it anew (Created, step 0): the run folder was deleted,
    /// or the user asked for a new run in the same folder.
    /// </summary>
    Task<RunInfo> Restart(string configYaml, int totalSteps);
    /// <summary>
    /// Records a config that differs from the stored one only in how the run executes (device, threads, cluster), not in
    /// what it computes; the status and step stay.
    /// </summary>
    Task<RunInfo> Reconfigure(string configYaml);
    /// <summary>
    /// Created or Paused → Running from step <paramref name="fromStep"/> (the last checkpoint's; later steps are redone).
    /// A Running run is taken over by the caller: its previous host is gone.
    /// </summary>
    Task<RunInfo> Start(int fromStep);
    /// <summary>Records a finished step and, when one was written, its checkpoint.</summary>
    Task<RunInfo> ReportStep(int step, string? checkpoint);
    /// <summary>Running → Paused.</summary>
    Task<RunInfo> Pause();
    /// <summary>Running → Completed.</summary>
    Task<RunInfo> Complete(string finalCheckpoint);
    /// <summary>Any live state → Failed, with the error.</summary>
    Task<RunInfo> Fail(string error);
    /// <summary>The run as stored.</summary>
    Task<RunInfo?> Get();
}
