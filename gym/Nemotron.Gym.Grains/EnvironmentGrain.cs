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
}
