using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>Builds the configured backend.</summary>
public static class SandboxServices
{
    /// <summary>
    /// The backend <paramref name="settings"/> names, ready to run; or null and the reason when this host
    /// cannot run it (tool missing, engine down, not root). Dispose the service when done.
    /// </summary>
    public static async Task<(ISandboxService? Service, string? Error)> CreateAsync(SandboxSettings settings, CancellationToken cancellation)
    {
        switch (settings.Backend)
        {
            case "bwrap":
                var (bwrap, bwrapError) = BwrapSandboxService.Create(settings);
                return (bwrap, bwrapError);
            case "docker":
                var (docker, dockerError) = await DockerSandboxService.CreateAsync(settings, cancellation);
                return (docker, dockerError);
            default:
                return (null, $"sandbox.backend '{settings.Backend}': expected bwrap or docker");
        }
    }

    /// <summary>Disposes a service made by <see cref="CreateAsync"/>.</summary>
    public static async ValueTask DisposeAsync(ISandboxService service)
    {
        switch (service)
        {
            case IAsyncDisposable asyncDisposable: await asyncDisposable.DisposeAsync(); break;
            case IDisposable disposable: disposable.Dispose(); break;
        }
    }
}
