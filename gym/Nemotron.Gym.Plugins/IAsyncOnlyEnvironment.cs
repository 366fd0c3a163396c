using Nemotron.Gym.Abstractions;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// An environment implemented by the host itself (not by plugin code) whose calls and its episodes' calls do no
/// blocking work on the caller's thread and always end soon after their token fires: the worker-hosted environment,
/// whose calls only queue a frame and wait for the reply under the token. <see cref="HostedEnvironment"/> calls such an
/// environment directly, bounded by the token alone, instead of moving each call to the thread pool and bounding the
/// wait a second time (one thread hop, a timer and a task fewer per call). Internal: a plugin cannot claim it.
/// </summary>
internal interface IAsyncOnlyEnvironment : IEnvironment;
