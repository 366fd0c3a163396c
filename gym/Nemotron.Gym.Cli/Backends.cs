using Nemotron.Gym.Kernels;
using Nemotron.Gym.Kernels.Cpu;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>Picks the compute backend for a command and says which it picked.</summary>
internal static class Backends
{
    public static IComputeBackend Create(string device, int threads)
    {
        IComputeBackend backend;
        string why = "";
        switch (device)
        {
            case "cpu": backend = new CpuBackend(threads); break;
            case "cuda":
                backend = Nemotron.Gym.Kernels.Cuda.CudaBackend.TryCreate(out string reason) ?? throw new CliException($"--device cuda: {reason}");
                break;
            case "auto":
                // CUDA when a device and driver are found, else the CPU backend (and why).
                backend = (IComputeBackend?)Nemotron.Gym.Kernels.Cuda.CudaBackend.TryCreate(out string r) ?? new CpuBackend(threads);
                if (backend is CpuBackend) why = $" (no CUDA: {r})";
                break;
            default: throw new CliException($"--device: expected cpu, cuda or auto, got '{device}'");
        }
        AnsiConsole.MarkupLineInterpolated($"[grey]device:[/] {backend.Description}{why}");
        return backend;
    }
}

/// <summary>An error the CLI reports as one line, without a stack trace.</summary>
public sealed class CliException(string message) : Exception(message);
