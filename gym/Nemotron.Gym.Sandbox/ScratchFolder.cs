using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox;

/// <summary>
/// A sandbox's writable folder on the host: a tmpfs of its own, capped in size and owned by the uid the
/// sandbox runs as, bound into the sandbox at /work. Files go in and come out here on the host side,
/// only while no sandboxed process runs (so nothing can swap a path for a symlink between our check and
/// our use), and a path that is absolute, climbs with "..", or passes through a symlink is refused.
/// </summary>
internal sealed class ScratchFolder : IDisposable
{
    public const int MaxFiles = 4096;

    private readonly long sizeBytes;
    private readonly int ownerUid;
    private bool mounted;
    private bool keepFolder;

    public string HostPath { get; }

    private ScratchFolder(string hostPath, long sizeBytes, int ownerUid)
    {
        HostPath = hostPath;
        this.sizeBytes = sizeBytes;
        this.ownerUid = ownerUid;
    }

    /// <summary>Creates the folder and mounts its tmpfs.</summary>
    public static ScratchFolder Create(string hostPath, long sizeBytes, int ownerUid)
    {
        Directory.CreateDirectory(hostPath);
        var scratch = new ScratchFolder(hostPath, sizeBytes, ownerUid);
        Native.MountTmpfs(hostPath, sizeBytes, ownerUid);
        scratch.mounted = true;
        return scratch;
    }

    /// <summary>
    /// Mounts a fresh tmpfs over an existing folder that stays when this is disposed (a warm slot's /work: a shared
    /// mount whose stacked tmpfs shows through inside the slot's sandbox).
    /// </summary>
    public static ScratchFolder Stack(string hostPath, long sizeBytes, int ownerUid)
    {
        var scratch = new ScratchFolder(hostPath, sizeBytes, ownerUid) { keepFolder = true };
        Native.MountTmpfs(hostPath, sizeBytes, ownerUid);
        scratch.mounted = true;
        return scratch;
    }

    /// <summary>Empties the folder: a fresh tmpfs replaces the old one (whatever the sandbox left there, links included).</summary>
    public void Clear()
    {
        Native.Unmount(HostPath);
        mounted = false;
        Native.MountTmpfs(HostPath, sizeBytes, ownerUid);
        mounted = true;
    }

    /// <summary>Deletes everything in the folder but keeps the mount (for a container that binds this very mount). Links are removed, never followed.</summary>
    public void Empty()
    {
        foreach (var entry in new DirectoryInfo(HostPath).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo { LinkTarget: null } directory) directory.Delete(recursive: true);
            else entry.Delete();
        }
    }

    /// <summary>Checks a path given by a caller; returns its parts, or the reason it is refused.</summary>
    public static (string[]? Parts, string? Error) CheckPath(string path)
    {
        if (string.IsNullOrEmpty(path)) return (null, "empty path");
        if (path.Length > 1024) return (null, $"path longer than 1024 characters: {path[..40]}...");
        if (path.Contains('\0')) return (null, "path contains a NUL character");
        if (path.StartsWith('/')) return (null, $"absolute path refused: '{path}' (paths are relative to the scratch folder)");
        var parts = path.Split('/');
        foreach (var part in parts)
        {
            if (part is "" or ".") return (null, $"path '{path}' has an empty or '.' component");
            if (part == "..") return (null, $"path '{path}' climbs out with '..'");
            if (part.Length > 255) return (null, $"path '{path}' has a component longer than 255 bytes");
        }
        return (parts, null);
    }

    /// <summary>Writes files; on a refused path nothing more is written and the reason comes back.</summary>
    public SandboxStatus Put(IReadOnlyList<SandboxFile> files)
    {
        if (files.Count > MaxFiles) return SandboxStatus.Failed($"{files.Count} files: at most {MaxFiles} at once");
        long total = 0;
        foreach (var file in files) total += file.Content.LongLength;
        if (total > sizeBytes) return SandboxStatus.Failed($"files total {total} bytes, more than the scratch folder's {sizeBytes}");
        foreach (var file in files)
        {
            var (parts, error) = CheckPath(file.Path);
            if (parts is null) return SandboxStatus.Failed(error!);
            try
            {
                var directory = HostPath;
                for (var i = 0; i < parts.Length - 1; i++)
                {
                    directory = Path.Combine(directory, parts[i]);
                    var info = new DirectoryInfo(directory);
                    if (info.LinkTarget is not null) return SandboxStatus.Failed($"'{file.Path}': '{parts[i]}' is a symbolic link; refused");
                    if (File.Exists(directory)) return SandboxStatus.Failed($"'{file.Path}': '{parts[i]}' is a file, not a folder");
                    if (!info.Exists)
                    {
                        Directory.CreateDirectory(directory);
                        Native.ChangeOwner(directory, ownerUid);
                    }
                }
                var target = Path.Combine(directory, parts[^1]);
                var existing = new FileInfo(target);
                if (existing.LinkTarget is not null) return SandboxStatus.Failed($"'{file.Path}' is a symbolic link; refused");
                if (Directory.Exists(target)) return SandboxStatus.Failed($"'{file.Path}' is a folder");
                File.WriteAllBytes(target, file.Content);
                Native.ChangeOwner(target, ownerUid);
                File.SetUnixFileMode(target, file.Executable
                    ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                    : UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            catch (IOException e)
            {
                return SandboxStatus.Failed($"'{file.Path}': {e.Message}");
            }
        }
        return SandboxStatus.Success;
    }

    /// <summary>Reads a regular file, at most <paramref name="maxBytes"/>.</summary>
    public SandboxFileRead Get(string path, long maxBytes)
    {
        var (parts, error) = CheckPath(path);
        if (parts is null) return new(null, false, error);
        var current = HostPath;
        for (var i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            var info = new FileInfo(current);
            if (info.LinkTarget is not null) return new(null, false, $"'{path}': '{parts[i]}' is a symbolic link; refused");
        }
        if (!File.Exists(current)) return new(null, false, $"'{path}' does not exist or is not a file");
        try
        {
            using var stream = new FileStream(current, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            if ((File.GetAttributes(current) & FileAttributes.Device) != 0) return new(null, false, $"'{path}' is not a regular file");
            var length = stream.Length;
            var take = (int)Math.Min(length, Math.Min(maxBytes, int.MaxValue));
            var buffer = new byte[take];
            stream.ReadExactly(buffer);
            return new(buffer, length > take, null);
        }
        catch (IOException e)
        {
            return new(null, false, $"'{path}': {e.Message}");
        }
    }

    public void Dispose()
    {
        if (mounted) Native.Unmount(HostPath);
        mounted = false;
        if (keepFolder) return;
        try { Directory.Delete(HostPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
