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

    public static bool IsRoot => geteuid() == 0;

    /// <summary>Mounts a size-capped tmpfs owned by <paramref name="uid"/> (mode 0700, no setuid, no devices).</summary>
    public static void MountTmpfs(string target, long sizeBytes, int uid)
    {
        var options = $"size={sizeBytes},mode=0700,uid={uid},gid={uid}";
        if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0)
            throw new IOException($"mount tmpfs on {target} ({options}) failed: {Marshal.GetLastPInvokeErrorMessage()}");
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
