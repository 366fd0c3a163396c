using System.Diagnostics;
using Orleans.Networking.Shared;
using Orleans.Runtime.Messaging;

namespace Nemotron.Gym.Runs;

/// <summary>
/// Failures of the cluster rather than of a grain: the call's silo is gone or did not answer, or the message could not
/// be delivered. They say nothing about the environment or the run, so the trainer's calls ride them out for a time
/// (a crashed silo is declared dead only once its probes have failed: seconds to tens of seconds) instead of a count
/// of attempts that such a window can use up (docs/architecture.md, "Replay of lost episodes").
/// </summary>
public static class ClusterFaults
{
    /// <summary>How long calls that keep failing for the cluster's sake are retried by default.</summary>
    public static readonly TimeSpan DefaultPatience = TimeSpan.FromMinutes(2);

    /// <summary>The waits between such retries double up to this.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// True for Orleans' delivery failures (silo unavailable, message rejected, connection refused) and a call that got
    /// no answer in time. The grains hand their own failures back as plain exceptions, which this never matches.
    /// </summary>
    public static bool Is(Exception e) =>
        e is OrleansMessageRejectionException or ConnectionFailedException or SocketConnectionException or TimeoutException or ClientNotAvailableException;

    /// <summary>The wait before retry number <paramref name="tries"/> (from 1): <paramref name="first"/>, doubling, capped at <see cref="MaxWait"/>.</summary>
    public static TimeSpan Wait(TimeSpan first, int tries)
    {
        var wait = first * (1 << Math.Clamp(tries - 1, 0, 10));
        return wait > MaxWait ? MaxWait : wait;
    }

    /// <summary>
    /// Cluster failures in a row, as one caller sees them: when the first came and how many followed. A call that gets
    /// through, or a failure of another kind, ends the outage (<c>default</c>); the next one gets the whole patience.
    /// </summary>
    public struct Outage
    {
        private long _since;

        /// <summary>Failures in this outage so far.</summary>
        public int Tries { get; private set; }

        /// <summary>Counts one more failure; true while the outage is younger than <paramref name="patience"/>.</summary>
        public bool Retry(TimeSpan patience)
        {
            if (Tries++ == 0) _since = Stopwatch.GetTimestamp();
            return Stopwatch.GetElapsedTime(_since) < patience;
        }
    }
}
