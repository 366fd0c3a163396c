using System.Runtime.InteropServices;

namespace Nemotron.Gym.Sandbox;

/// <summary>The few libc calls .NET does not wrap: mounting scratch tmpfs, changing owners, signalling by pid.</summary>
internal static partial class Native
{
    public const int SIGKILL = 9, SIGTERM = 15;
    private const ulong MS_NOSUID = 2, MS_NODEV = 4;
    private const int MNT_DETACH = 2;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string fstype, ulong flags, string data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int owner, int group);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open_file(string path, int flags);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int change_propagation(string? source, string target, string? fstype, ulong flags, string? data);

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;
    private const ulong MS_SHARED = 1 << 20;

    public static bool IsRoot => geteuid() == 0;

    /// <summary>Mounts a size-capped tmpfs owned by <paramref name="uid"/> (mode 0700, no setuid, no devices).</summary>
    public static void MountTmpfs(string target, long sizeBytes, int uid) => MountTmpfs(target, sizeBytes, uid, "0700");

    /// <summary>Mounts a size-capped tmpfs owned by <paramref name="uid"/> with the given octal mode (no setuid, no devices).</summary>
    public static void MountTmpfs(string target, long sizeBytes, int uid, string mode)
    {
        var options = $"size={sizeBytes},mode={mode},uid={uid},gid={uid}";
        if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0)
            throw new IOException($"mount tmpfs on {target} ({options}) failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>
    /// Makes a mount shared: mounts stacked on it later show through every bind of it, also a bind inside a
    /// sandbox's mount namespace (where it arrives as a slave, so nothing the sandbox does comes back).
    /// </summary>
    public static void MakeShared(string target)
    {
        if (change_propagation(null, target, null, MS_SHARED, null) != 0)
            throw new IOException($"making {target} a shared mount failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>Creates a named pipe (FIFO).</summary>
    public static void MakeFifo(string path, uint mode)
    {
        if (mkfifo(path, mode) != 0)
            throw new IOException($"mkfifo {path} failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>open(2); the file descriptor, or an IOException naming the path.</summary>
    public static int Open(string path, int flags)
    {
        var fd = open_file(path, flags);
        if (fd < 0) throw new IOException($"open {path} failed: {Marshal.GetLastPInvokeErrorMessage()}");
        return fd;
    }

    /// <summary>Detaches a mount (lazily, so a file still open somewhere cannot keep it busy); false when nothing was mounted.</summary>
    public static bool Unmount(string target) => umount2(target, MNT_DETACH) == 0;

    public static void ChangeOwner(string path, int uid)
    {
        if (lchown(path, uid, uid) != 0)
            throw new IOException($"chown {path} to {uid} failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>Sends SIGKILL; a process already gone is not an error.</summary>
    public static void Kill(int pid) => _ = kill(pid, SIGKILL);

    /// <summary>Sends a signal; false when the process does not exist.</summary>
    public static bool Signal(int pid, int signal) => kill(pid, signal) == 0;
}
