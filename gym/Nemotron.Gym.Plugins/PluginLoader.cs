using System.Reflection;
using System.Runtime.Loader;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Plugins;

/// <summary>
/// Loads one plugin's assemblies in isolation: its dependencies come from its own folder, so plugins
/// can use different versions of a library than we or other plugins do. Only the contract assemblies are
/// shared (from the host), so the plugin's <see cref="IEnvironment"/> is the host's type.
/// </summary>
internal sealed class PluginLoadContext(string entryAssemblyPath) : AssemblyLoadContext(name: Path.GetFileNameWithoutExtension(entryAssemblyPath), isCollectible: false)
{
    private readonly AssemblyDependencyResolver _resolver = new(entryAssemblyPath);
    // The plugin contract and the conversation contract it brings with it.
    private static readonly string[] ContractNames = [typeof(IEnvironment).Assembly.GetName().Name!, typeof(Message).Assembly.GetName().Name!];

    protected override Assembly? Load(AssemblyName name)
    {
        if (ContractNames.Contains(name.Name)) return null; // the host's copy: one IEnvironment and one Message type for everyone
        var path = _resolver.ResolveAssemblyToPath(name);
        return path != null ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path != null ? LoadUnmanagedDllFromPath(path) : IntPtr.Zero;
    }
}

/// <summary>An environment type found in a plugin, not yet instantiated.</summary>
/// <param name="Descriptor">What it says about itself.</param>
/// <param name="Folder">The plugin folder.</param>
/// <param name="AssemblyPath">The assembly it came from.</param>
/// <param name="Type">The class (null when the plugin runs in a worker process and only <see cref="Factory"/> can make one).</param>
public sealed record PluginEnvironment(EnvironmentDescriptor Descriptor, string Folder, string AssemblyPath, Type? Type)
{
    /// <summary>The environment's data folder (data/ in the plugin folder).</summary>
    public string DataDirectory => Path.Combine(Folder, "data");

    /// <summary>
    /// Makes the instance instead of <see cref="Type"/>: a plugin hosted in a worker process is created as a proxy that
    /// forwards every call to the worker, so the host never runs plugin code itself.
    /// </summary>
    public Func<IEnvironment>? Factory { get; init; }

    /// <summary>A new instance.</summary>
    public IEnvironment Create() => Factory != null ? Factory()
        : Type != null ? (IEnvironment)Activator.CreateInstance(Type)!
        : throw new InvalidOperationException($"{AssemblyPath}: environment '{Descriptor.Name}' has neither a type nor a factory");
}

/// <summary>A plugin that could not be used, and why.</summary>
/// <param name="Source">The folder or assembly.</param>
/// <param name="Error">What is wrong, in words.</param>
public sealed record PluginError(string Source, string Error);

/// <summary>
/// Finds environments. A plugin is a folder holding an assembly named like the folder (or named in a
/// plugin.json {"assembly": "X.dll"}), its dependencies and its data/. Each plugin loads in its own
/// context; one that fails to load or breaks the contract is reported and the others still load.
/// </summary>
public static class PluginLoader
{
    /// <summary>The folders searched by default: plugins/ beside the running tool, then NEMOTRON_GYM_PLUGINS (path-separated).</summary>
    public static IReadOnlyList<string> DefaultSearchPaths()
    {
        var paths = new List<string> { Path.Combine(AppContext.BaseDirectory, "plugins") };
        var extra = Environment.GetEnvironmentVariable("NEMOTRON_GYM_PLUGINS");
        if (!string.IsNullOrWhiteSpace(extra)) paths.AddRange(extra.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        return paths;
    }

    /// <summary>
    /// Loads every plugin under <paramref name="searchPaths"/>: each path is a plugin folder itself, or a
    /// folder of plugin folders.
    /// </summary>
    public static (List<PluginEnvironment> Environments, List<PluginError> Errors) LoadAll(IEnumerable<string> searchPaths)
    {
        var envs = new List<PluginEnvironment>();
        var errors = new List<PluginError>();
        foreach (var folder in FindPluginFolders(searchPaths))
        {
            var (found, error) = LoadFolder(folder);
            envs.AddRange(found);
            if (error != null) errors.Add(error);
        }
        return KeepFirstByName(envs, errors);
    }

    /// <summary>The folders <see cref="LoadAll"/> tries, in its order: each search path that is a plugin folder, else its subfolders.</summary>
    public static IReadOnlyList<string> FindPluginFolders(IEnumerable<string> searchPaths)
    {
        var list = new List<string>();
        foreach (var root in searchPaths)
        {
            if (!Directory.Exists(root)) continue;
            list.AddRange(IsPluginFolder(root) ? [root] : Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal));
        }
        return list;
    }

    /// <summary>Two plugins claiming one name: keeps the first and reports the second in the errors.</summary>
    public static (List<PluginEnvironment> Environments, List<PluginError> Errors) KeepFirstByName(List<PluginEnvironment> envs, List<PluginError> errors)
    {
        var byName = new Dictionary<string, PluginEnvironment>(StringComparer.Ordinal);
        var unique = new List<PluginEnvironment>();
        foreach (var e in envs)
        {
            if (byName.TryGetValue(e.Descriptor.Name, out var first))
                errors.Add(new PluginError(e.AssemblyPath, $"environment name '{e.Descriptor.Name}' is already taken by {first.AssemblyPath}; this one is ignored"));
            else { byName[e.Descriptor.Name] = e; unique.Add(e); }
        }
        return (unique, errors);
    }

    private static bool IsPluginFolder(string folder) =>
        File.Exists(Path.Combine(folder, "plugin.json")) || File.Exists(Path.Combine(folder, Path.GetFileName(Path.TrimEndingDirectorySeparator(folder)) + ".dll"));

    /// <summary>Loads one plugin folder.</summary>
    public static (List<PluginEnvironment> Environments, PluginError? Error) LoadFolder(string folder)
    {
        folder = Path.GetFullPath(folder);
        string entry;
        try { entry = EntryAssembly(folder); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException) { return ([], new PluginError(folder, e.Message)); }
        return LoadAssembly(entry);
    }

    /// <summary>Loads the environments of one plugin assembly (its folder holds its dependencies and data/).</summary>
    public static (List<PluginEnvironment> Environments, PluginError? Error) LoadAssembly(string entry)
    {
        entry = Path.GetFullPath(entry);
        if (!File.Exists(entry)) return ([], new PluginError(entry, "assembly not found"));
        string folder = Path.GetDirectoryName(entry)!;
        Assembly assembly;
        try { assembly = new PluginLoadContext(entry).LoadFromAssemblyPath(entry); }
        catch (Exception e) { return ([], new PluginError(entry, $"cannot load the assembly: {e.GetType().Name}: {e.Message}")); }
        Type[] types;
        try { types = assembly.GetTypes(); }
        catch (ReflectionTypeLoadException e)
        {
            var first = e.LoaderExceptions.FirstOrDefault(x => x != null);
            return ([], new PluginError(entry, $"a type of the assembly cannot be loaded (a missing dependency?): {first?.Message}"));
        }
        var candidates = types.Where(t => typeof(IEnvironment).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false }).ToList();
        if (candidates.Count == 0)
        {
            // The usual cause: the plugin was built against its own copy of the contract.
            bool foreignContract = types.Any(t => t.GetInterfaces().Any(i => i.FullName == typeof(IEnvironment).FullName));
            return ([], new PluginError(entry, foreignContract
                ? "implements IEnvironment from another copy of Nemotron.Gym.Abstractions (reference it with Private=false so the host's copy is used)"
                : "no public class implements Nemotron.Gym.Abstractions.IEnvironment"));
        }
        var result = new List<PluginEnvironment>();
        foreach (var t in candidates)
        {
            if (t.GetConstructor(Type.EmptyTypes) == null)
                return ([], new PluginError(entry, $"{t.FullName} has no public parameterless constructor"));
            EnvironmentDescriptor d;
            try { d = ((IEnvironment)Activator.CreateInstance(t)!).Descriptor; }
            catch (Exception e) { return ([], new PluginError(entry, $"{t.FullName} failed to construct or describe itself: {Unwrap(e).Message}")); }
            var problem = CheckDescriptor(d);
            if (problem != null) return ([], new PluginError(entry, $"{t.FullName}: {problem}"));
            result.Add(new PluginEnvironment(d, folder, entry, t));
        }
        return (result, null);
    }

    private static string EntryAssembly(string folder)
    {
        var manifest = Path.Combine(folder, "plugin.json");
        if (File.Exists(manifest))
        {
            System.Text.Json.Nodes.JsonNode? node;
            try { node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest)); }
            catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{manifest}: not valid JSON ({e.Message})"); }
            var name = node?["assembly"] switch
            {
                null => throw new InvalidDataException($"{manifest}: field 'assembly' is missing (the plugin's .dll file name, inside its folder)"),
                System.Text.Json.Nodes.JsonValue v when v.TryGetValue(out string? text) && text.Length > 0 => text,
                var other => throw new InvalidDataException($"{manifest}: field 'assembly' is {other.ToJsonString()}; expected the plugin's .dll file name as a string"),
            };
            // Confined to the plugin's folder: a plugin names its own assembly, never one elsewhere on the machine.
            var path = Path.GetFullPath(Path.Combine(folder, name));
            if (Path.IsPathRooted(name) || !path.StartsWith(Path.TrimEndingDirectorySeparator(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidDataException($"{manifest}: field 'assembly' is '{name}', outside the plugin folder {folder}; name a .dll inside it");
            return File.Exists(path) ? path : throw new FileNotFoundException($"{manifest}: assembly '{name}' not found in {folder}");
        }
        var byName = Path.Combine(folder, Path.GetFileName(folder) + ".dll");
        return File.Exists(byName) ? byName : throw new FileNotFoundException($"{folder}: no plugin.json and no {Path.GetFileName(byName)}");
    }

    /// <summary>Breaks of the descriptor contract, or null.</summary>
    public static string? CheckDescriptor(EnvironmentDescriptor d)
    {
        if (string.IsNullOrWhiteSpace(d.Name) || !d.Name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-'))
            return $"name '{d.Name}' must be lowercase letters, digits, '-' or '_'";
        if (!Version.TryParse(d.Version.Split('-')[0], out _)) return $"version '{d.Version}' is not a version number";
        if (string.IsNullOrWhiteSpace(d.Description)) return "description is empty";
        if (d.Splits.Count == 0) return "no task splits";
        foreach (var o in d.Options)
        {
            var error = ConfigValues.Check(o, o.Default);
            if (error != null) return $"the default of option '{o.Name}' is invalid: {error}";
        }
        return null;
    }

    internal static Exception Unwrap(Exception e) => e is TargetInvocationException { InnerException: { } inner } ? inner : e;
}
