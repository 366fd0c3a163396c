using System.Runtime.InteropServices;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// A classic-BPF seccomp program, handed to bwrap (<c>--seccomp FD</c>), that refuses (EPERM) the system calls whose
/// state outlives every process of a run inside the namespaces that made it: SysV shared memory, semaphores and
/// message queues, POSIX message queues (all kept by the IPC namespace), and kernel keyrings (the user keyring is kept
/// per uid by the user namespace). A cold run's namespaces die with it, but a warm slot's live on to the next run, so
/// these would let one run leave data for the next. Every other call is allowed; a call made under another
/// architecture's convention (32-bit or x32 entry points) kills the process, so none of the above slips through by
/// number. Cold runs get the same filter, so a program behaves the same on either path.
/// </summary>
internal static class SeccompFilter
{
    private const ushort LoadWordAbsolute = 0x20, JumpIfEqual = 0x15, JumpIfGreaterOrEqual = 0x35, Return = 0x06;
    private const uint Allow = 0x7fff0000, KillProcess = 0x80000000, ErrnoEperm = 0x00050000 | 1;
    private const uint X32Bit = 0x40000000;

    /// <summary>The program's bytes for this machine's architecture, or null where none is known (no filter, no warm slots).</summary>
    public static byte[]? ForThisMachine() => RuntimeInformation.OSArchitecture switch
    {
        // shmget, semget, msgget, mq_open, add_key, request_key, keyctl.
        Architecture.X64 => Build(0xC000003E, [29, 64, 68, 240, 248, 249, 250], refuseX32: true),
        Architecture.Arm64 => Build(0xC00000B7, [194, 190, 186, 180, 217, 218, 219], refuseX32: false),
        _ => null,
    };

    private static byte[] Build(uint auditArch, uint[] refused, bool refuseX32)
    {
        var program = new List<(ushort Code, byte JumpTrue, byte JumpFalse, uint K)>
        {
            (LoadWordAbsolute, 0, 0, 4),                 // seccomp_data.arch
            (JumpIfEqual, 1, 0, auditArch),
            (Return, 0, 0, KillProcess),
            (LoadWordAbsolute, 0, 0, 0),                 // seccomp_data.nr
        };
        // Jumps count instructions to skip; the EPERM return is the last instruction, the allow one before it.
        var checks = refused.Length + (refuseX32 ? 1 : 0);
        var index = 0;
        if (refuseX32) program.Add((JumpIfGreaterOrEqual, (byte)(checks - index++ ), 0, X32Bit));
        foreach (var number in refused) program.Add((JumpIfEqual, (byte)(checks - index++), 0, number));
        program.Add((Return, 0, 0, Allow));
        program.Add((Return, 0, 0, ErrnoEperm));
        var bytes = new byte[program.Count * 8];
        for (var i = 0; i < program.Count; i++)
        {
            var (code, jt, jf, k) = program[i];
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 8), code);
            bytes[i * 8 + 2] = jt;
            bytes[i * 8 + 3] = jf;
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 8 + 4), k);
        }
        return bytes;
    }
}
