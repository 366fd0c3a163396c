using Nemotron.Gym.Conversation;
using Orleans.Concurrency;

namespace Nemotron.Gym.Grains;

/// <summary>An environment on whichever silo the call lands; the work is the silo's <see cref="EnvironmentPool"/>.</summary>
[StatelessWorker]
public sealed class EnvironmentGrain(EnvironmentPool pool) : Grain, IEnvironmentGrain
{
    /// <inheritdoc />
    public async Task<EnvironmentInfo> Describe()
    {
        var env = await pool.GetAsync(this.GetPrimaryKeyString(), new Dictionary<string, string>());
        var d = env.Descriptor;
        return new EnvironmentInfo(d.Name, d.Version, d.Description, d.Splits);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListTasks(TaskSetSpec taskSet)
    {
        if (taskSet.Environment != this.GetPrimaryKeyString())
            throw new ArgumentException($"environment grain '{this.GetPrimaryKeyString()}' asked for tasks of '{taskSet.Environment}'");
        return (await pool.GetTasksAsync(taskSet)).Keys.Order(StringComparer.Ordinal).ToList();
    }

    /// <inheritdoc />
    public async Task<bool> GradesGroups(TaskSetSpec taskSet)
    {
        CheckName(taskSet);
        return (await pool.GetAsync(taskSet.Environment, taskSet.Settings)).GradesGroups;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<Grade>> GradeGroup(TaskSetSpec taskSet, string taskId, IReadOnlyList<GroupMember> members)
    {
        CheckName(taskSet);
        var env = await pool.GetAsync(taskSet.Environment, taskSet.Settings);
        var task = await pool.GetTaskAsync(taskSet, taskId);
        return await env.GradeGroupAsync(task, members);
    }

    private void CheckName(TaskSetSpec taskSet)
    {
        if (taskSet.Environment != this.GetPrimaryKeyString())
            throw new ArgumentException($"environment grain '{this.GetPrimaryKeyString()}' asked about '{taskSet.Environment}'");
    }
}
