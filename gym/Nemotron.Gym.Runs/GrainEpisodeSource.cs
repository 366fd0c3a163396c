using Microsoft.Extensions.Logging;
using Nemotron.Gym.Grains;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Plugins;
using Nemotron.Gym.Training.Grpo;

namespace Nemotron.Gym.Runs;

/// <summary>
/// The trainer's <see cref="IEpisodeSource"/> over episode grains. Each opened episode is a fresh grain. If a
/// call fails because its silo went away (or the grain lost its state), the episode is replayed on a new grain:
/// opened again and stepped with the turns already taken, which gives the same state because environments are
/// deterministic given the task and seed. An environment that keeps failing ends the episode not judged (masked by the trainer) with
/// the error as its reason, so one broken task never stops a run. A grade that comes back not judged
/// (<see cref="Grade.MaskReason"/>: the sandbox or a judge failed) is replayed the same way, up to
/// <see cref="MaxAttempts"/> attempts in all, and then handed to the trainer as it is, to be masked. A call that failed
/// for the cluster's sake (its silo lost or not answering, the grain directory moving after a silo died) says nothing
/// about the environment: it is replayed too, without using up an attempt, for as long as <see cref="ClusterPatience"/>.
/// </summary>
public sealed class GrainEpisodeSource : IEpisodeSource, IGroupGradingSource
{
    private readonly IGrainFactory _grains;
    private readonly string _scope;
    private readonly Dictionary<string, (TaskSetSpec Set, string TaskId)> _tasks = new();
    private readonly HashSet<string> _groupGraded = new(StringComparer.Ordinal); // environments that grade whole groups
    private readonly ILogger? _log;
    private long _opened;

    /// <summary>Replays tried before an episode is given up.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Wait before the first replay; doubled for each further one. A silo that just died may still be
    /// in the membership for a moment, and an immediate retry can be routed to it again.</summary>
    public TimeSpan ReplayBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>How long calls that keep failing for the cluster's sake (<see cref="ClusterFaults"/>) are replayed
    /// before the episode is given up. A crashed silo is declared dead only after its probes fail, and until then calls
    /// to it time out; a count of attempts would run out in that window and mask episodes the environment could have
    /// finished.</summary>
    public TimeSpan ClusterPatience { get; set; } = ClusterFaults.DefaultPatience;

    /// <summary>Calls replayed because the cluster failed them (for tests and metrics); they use up no attempt.</summary>
    public long ClusterRetries => Interlocked.Read(ref _clusterRetries);
    private long _clusterRetries;

    // The wait before the next try: doubling from the replay backoff; capped for cluster failures, which are retried
    // for a time, not a count.
    private TimeSpan Backoff(int tries, bool cluster) => cluster ? ClusterFaults.Wait(ReplayBackoff, tries) : ReplayBackoff * (1 << (tries - 1));

    /// <summary>Episodes replayed on a new grain after a failure (for tests and metrics).</summary>
    public long Replays => Interlocked.Read(ref _replays);
    private long _replays;

    /// <summary>Of <see cref="Replays"/>, those made because the grade came back not judged (an infrastructure failure).</summary>
    public long NotJudgedRetries => Interlocked.Read(ref _notJudgedRetries);
    private long _notJudgedRetries;

    /// <summary>Groups graded again because no member got a verdict (a worker lost mid-grading, a judge down).</summary>
    public long GroupRetries => Interlocked.Read(ref _groupRetries);
    private long _groupRetries;

    private GrainEpisodeSource(IGrainFactory grains, string scope, ILogger? log)
    {
        _grains = grains;
        _scope = scope;
        _log = log;
    }

    /// <summary>Lists the tasks of each task set through the environment grains.</summary>
    public static async Task<GrainEpisodeSource> CreateAsync(IGrainFactory grains, string scope, IEnumerable<TaskSetSpec> sets, ILogger? log = null)
    {
        var source = new GrainEpisodeSource(grains, scope, log);
        var all = new List<RlTask>();
        foreach (var set in sets)
        {
            var environment = grains.GetGrain<IEnvironmentGrain>(set.Environment);
            IReadOnlyList<string> ids;
            try
            {
                ids = await environment.ListTasks(set);
                if (await environment.GradesGroups(set)) source._groupGraded.Add(set.Environment);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Grains hand failures back as plain exceptions; this one says which environment could not start
                // (a plugin that failed to load, an installation replaced under the command), and a command ends
                // with its message rather than a stack trace.
                throw new EnvironmentCallException($"environment '{set.Environment}': {e.Message}", e);
            }
            foreach (var id in ids)
            {
                var task = new RlTask($"{set.Environment}/{id}", set.Environment);
                source._tasks[task.Id] = (set, id);
                all.Add(task);
            }
        }
        source.Tasks = all;
        return source;
    }

    /// <inheritdoc />
    public IReadOnlyList<RlTask> Tasks { get; private set; } = [];

    /// <inheritdoc />
    public async Task<IEpisode> OpenAsync(RlTask task, int sampleIndex, int seed, CancellationToken cancellation)
    {
        var (set, id) = _tasks.TryGetValue(task.Id, out var t) ? t : throw new ArgumentException($"unknown task '{task.Id}'");
        var episode = new GrainEpisode(this, new EpisodeSpec(set, id, sampleIndex, seed), $"{_scope}/{task.Id}/{sampleIndex}/{Interlocked.Increment(ref _opened)}");
        await episode.OpenAsync(cancellation);
        return episode;
    }

    /// <summary>
    /// Group grading through the environment grain, for environments that grade groups (the others keep their
    /// episodes' grades and cost no call). The members' conversations travel with the call, so it does not matter on
    /// which silos they ran or whether one was replayed. A failed call is retried like an episode call, and so is a
    /// call whose members all came back not judged (the plugin host turns a worker lost mid-grading, or a judge that
    /// did not answer, into such grades); after the last attempt every member is masked with the reason (a grader that
    /// could not run says nothing about the responses). Members masked one by one are kept as they are: the rest of the
    /// group was judged.
    /// </summary>
    public async Task<IReadOnlyList<Grade>> GradeGroupAsync(RlTask task, IReadOnlyList<GroupMember> members, CancellationToken cancellation)
    {
        var (set, id) = _tasks.TryGetValue(task.Id, out var t) ? t : throw new ArgumentException($"unknown task '{task.Id}'");
        if (!_groupGraded.Contains(set.Environment)) return members.Select(m => m.Grade).ToList();
        var outage = new ClusterFaults.Outage();
        for (int attempt = 1, tries = 1; ; tries++)
        {
            cancellation.ThrowIfCancellationRequested();
            string failure;
            bool cluster = false;
            try
            {
                var grades = await _grains.GetGrain<IEnvironmentGrain>(set.Environment).GradeGroup(set, id, members);
                if (grades.Count == 0 || !grades.All(g => g.Masked) || attempt >= MaxAttempts) return grades;
                failure = grades[0].MaskReason ?? grades[0].Reason;
            }
            catch (Exception e) when (!cancellation.IsCancellationRequested)
            {
                cluster = ClusterFaults.Is(e);
                if (cluster ? !outage.Retry(ClusterPatience) : attempt >= MaxAttempts)
                    return members.Select(_ => Grade.NotJudged($"group grading failed after {tries} tries: {e.Message}")).ToList();
                failure = e.Message;
            }
            if (cluster) Interlocked.Increment(ref _clusterRetries);
            else outage = default;
            Interlocked.Increment(ref _groupRetries);
            _log?.LogWarning("group of {Task}: no verdict ({Error}); trying again", task.Id, failure);
            await Task.Delay(Backoff(cluster ? outage.Tries : attempt++, cluster), cancellation);
        }
    }

    private sealed class GrainEpisode(GrainEpisodeSource source, EpisodeSpec spec, string key) : IEpisode
    {
        private readonly List<(AssistantTurn Turn, bool Final)> _turns = new();
        private IEpisodeGrain? _grain; // null: open (again) on a new grain before the next call
        private int _attempt; // grains this episode moved to after the first (each replay opens a new one)
        private int _failures; // of those replays, the ones the environment's failures caused: at most MaxAttempts - 1
        private ClusterFaults.Outage _outage; // the cluster failures this episode's calls are in the middle of
        private string? _failure;

        public ChatTranscript Opening { get; private set; } = new([]);

        public async Task OpenAsync(CancellationToken ct)
        {
            try { await WithReplay(_ => Task.FromResult(0), ct, "open"); }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OperationCanceledException)
            {
                throw new EnvironmentCallException($"episode {key}: could not be opened in {_attempt + 1} attempts: {e.Message}", e);
            }
        }

        private async Task<IEpisodeGrain> OpenOnNewGrain()
        {
            var grain = source._grains.GetGrain<IEpisodeGrain>(_attempt == 0 ? key : $"{key}#{_attempt}");
            var o = await grain.Open(spec);
            Opening = new ChatTranscript(o.Messages, o.Tools.Count > 0 ? o.Tools : null);
            // Replay the turns already taken (none on the first attempt).
            foreach (var (turn, final) in _turns) await grain.Step(turn, final);
            return grain;
        }

        // Runs the call on the current grain; after a failure, the next round reopens on a new grain and replays.
        private async Task<T> WithReplay<T>(Func<IEpisodeGrain, Task<T>> call, CancellationToken ct, string what)
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    _grain ??= await OpenOnNewGrain();
                    var result = await call(_grain);
                    _outage = default; // the next outage gets the whole patience again
                    return result;
                }
                catch (Exception e) when (!ct.IsCancellationRequested && MayReplay(e, out bool cluster))
                {
                    _attempt++;
                    _grain = null;
                    Interlocked.Increment(ref source._replays);
                    if (cluster) Interlocked.Increment(ref source._clusterRetries);
                    source._log?.LogWarning("episode {Key}: {What} failed ({Error}); replaying on a new grain", key, what, e.Message);
                    await Task.Delay(source.Backoff(cluster ? _outage.Tries : _failures, cluster), ct);
                }
            }
        }

        // A cluster failure is replayed while the cluster's patience lasts and uses up no attempt; any other failure
        // uses one (and ends a run of cluster failures).
        private bool MayReplay(Exception e, out bool cluster)
        {
            cluster = ClusterFaults.Is(e);
            if (cluster) return _outage.Retry(source.ClusterPatience);
            _outage = default;
            if (_failures + 1 >= source.MaxAttempts) return false;
            _failures++;
            return true;
        }

        public async Task<EpisodeReply> StepAsync(AssistantTurn turn, bool final, CancellationToken ct)
        {
            if (_failure != null) return EpisodeReply.End;
            try
            {
                var r = await WithReplay(g => g.Step(turn, final), ct, "step");
                _turns.Add((turn, final));
                return r.Done ? EpisodeReply.End : new EpisodeReply(false, r.Reply);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                _failure = ClusterFaults.Is(e)
                    ? $"the cluster failed the episode's calls for {source.ClusterPatience.TotalSeconds:0.#} s at turn {_turns.Count + 1}: {e.Message}"
                    : $"environment failed at turn {_turns.Count + 1}: {e.Message}";
                return EpisodeReply.End;
            }
        }

        public async Task<Grade> GradeAsync(bool truncated, CancellationToken ct)
        {
            if (_failure != null) return EnvironmentError(_failure);
            try
            {
                while (true)
                {
                    var grade = (await WithReplay(g => g.Grade(truncated), ct, "grade")).Grade;
                    if (!grade.Masked || _failures + 1 >= source.MaxAttempts)
                        return grade.Masked && _attempt > 0 ? grade with { MaskReason = $"{grade.MaskReason} (after {_attempt + 1} attempts)" } : grade;
                    // Not judged (the sandbox or a judge failed): the same episode replayed on a new grain gets another
                    // chance; after the last one the trainer masks it, it is never learned from as a 0.
                    _attempt++;
                    _failures++;
                    _grain = null;
                    Interlocked.Increment(ref source._replays);
                    Interlocked.Increment(ref source._notJudgedRetries);
                    source._log?.LogWarning("episode {Key}: not judged ({Reason}); replaying on a new grain", key, grade.MaskReason);
                    await Task.Delay(source.Backoff(_failures, cluster: false), ct);
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested) { return EnvironmentError($"grading failed: {e.Message}"); }
        }

        // Not judged: an environment that failed on every attempt has said nothing about the answer; the trainer masks it.
        private static Grade EnvironmentError(string reason) =>
            Grade.NotJudged(reason, new Dictionary<string, double> { ["environment_error"] = 1 });
    }
}
