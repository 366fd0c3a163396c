namespace Nemotron.Gym.Plugins;

/// <summary>
/// The episode (or environment) this call needed is gone because the process that held it ended: a plugin worker that
/// exited, crashed or was killed. Nothing is wrong with the call itself; the episode is replayed from its start on a new
/// worker (the grain fails, and the trainer's side opens it again), so a grade is never made up for it.
/// </summary>
public sealed class EpisodeLostException(string message) : EnvironmentCallException(message);

/// <summary>
/// An exception thrown by plugin code in another process, carried back as its type name and message (the exception
/// object itself cannot cross a process boundary, and a worker's types are not ours to load).
/// </summary>
public sealed class PluginFaultException(string typeName, string message) : Exception(message)
{
    /// <summary>The name of the exception type the plugin threw.</summary>
    public string TypeName { get; } = typeName;
}
