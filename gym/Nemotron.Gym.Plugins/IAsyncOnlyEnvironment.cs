using Nemotron.Gym.Abstractions;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// An environment implemented by the host itself (not by plugin code) whose calls and its episodes' calls do no
/// blocking work on the caller's thread and always end soon after their token fires or their time limit passes: the
/// worker-hosted environment, whose calls only queue a frame and wait for the reply. <see cref="HostedEnvironment"/>
/// gives it the host's limits once and calls it directly, with the caller's token: the environment bounds each call by
/// the limit itself (a call past it throws <see cref="TimeoutException"/>), instead of the host moving each call to the
/// thread pool and making a linked token source and a timer per call. Internal: a plugin cannot claim it.
/// </summary>
internal interface IAsyncOnlyEnvironment : IEnvironment
{
    /// <summary>
    /// The host's limits, set before any call: open, step, grade, load and initialize are bounded by
    /// <see cref="HostLimits.CallTimeout"/>, grading a group by <see cref="HostLimits.GroupTimeout"/>.
    /// </summary>
    HostLimits? Limits { set; }
}
