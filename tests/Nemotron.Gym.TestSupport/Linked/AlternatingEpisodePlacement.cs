using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime.Placement;

namespace Nemotron.Gym.TestSupport;

/// <summary>
/// A silo's default placement for multi-silo tests: episodes alternate over the compatible silos, so every silo
/// serves some (Orleans' default placement keeps them local while the silos share one process and its load); the
/// run grain goes to <see cref="RunGrainHome"/> when one is set; anything else stays on the calling silo.
/// </summary>
public sealed class AlternatingEpisodePlacement : IPlacementDirector
{
    private int _next;

    /// <summary>The silo the run grain is placed on (null: the calling silo).</summary>
    public SiloAddress? RunGrainHome { get; set; }

    /// <summary>Makes this the default placement of <paramref name="silo"/>.</summary>
    public void UseOn(ISiloBuilder silo)
    {
        silo.Services.AddSingleton<PlacementStrategy, Strategy>();
        silo.Services.AddPlacementDirector<Strategy>(_ => this);
    }

    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        string type = target.GrainIdentity.Type.ToString()!;
        if (type == "episode")
            return Task.FromResult(silos[(int)((uint)Interlocked.Increment(ref _next) % silos.Length)]);
        if (type == "run" && RunGrainHome != null && silos.Contains(RunGrainHome)) return Task.FromResult(RunGrainHome);
        return Task.FromResult(silos.Contains(context.LocalSilo) ? context.LocalSilo : silos[0]);
    }

    private sealed class Strategy : PlacementStrategy;
}
