using System.Collections.Concurrent;
using System.Diagnostics;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// Starts long-lived sandbox processes from one thread that lives as long as this process. bwrap's
/// <c>--die-with-parent</c> rests on the kernel's parent-death signal, which fires when the THREAD that forked the
/// process ends, not the process: a warm slot started from a thread-pool thread would be killed whenever the pool
/// retired that thread.
/// </summary>
internal static class LauncherThread
{
    private static readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Started)> requests = [];

    static LauncherThread()
    {
        var thread = new Thread(() =>
        {
            foreach (var (start, started) in requests.GetConsumingEnumerable())
            {
                try
                {
                    var process = new Process { StartInfo = start };
                    process.Start();
                    started.SetResult(process);
                }
                catch (Exception e) { started.SetException(e); }
            }
        })
        { IsBackground = true, Name = "sandbox launcher" };
        thread.Start();
    }

    public static Task<Process> StartAsync(ProcessStartInfo start)
    {
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        requests.Add((start, started));
        return started.Task;
    }
}
