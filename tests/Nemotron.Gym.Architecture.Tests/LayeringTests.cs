using System.Xml.Linq;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Architecture.Tests;

/// <summary>
/// The dependency rules of docs/architecture.md, checked on every csproj of the repository: each product project may
/// reference only the projects its layer allows, directly or through others. A new product project must be given its
/// place here before it builds into a green suite.
/// </summary>
public class LayeringTests
{
    // Project → the projects it may reference directly. Transitive references follow from these.
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Nemotron.Gym.Conversation"] = [],
        ["Nemotron.Gym.Abstractions"] = ["Nemotron.Gym.Conversation"],
        ["Nemotron.Gym.Rewards"] = ["Nemotron.Gym.Abstractions"],
        ["Nemotron.Gym.Kernels"] = [],
        ["Nemotron.Gym.Kernels.Cuda"] = ["Nemotron.Gym.Kernels"],
        ["Nemotron.Gym.Model"] = ["Nemotron.Gym.Kernels", "Nemotron.Gym.Conversation"],
        ["Nemotron.Gym.Training"] = ["Nemotron.Gym.Model"],
        ["Nemotron.Gym.Plugins"] = ["Nemotron.Gym.Abstractions"],
        ["Nemotron.Gym.Sandbox"] = ["Nemotron.Gym.Abstractions"],
        ["Nemotron.Gym.Grains.Abstractions"] = ["Nemotron.Gym.Conversation"],
        ["Nemotron.Gym.PluginWorker"] = ["Nemotron.Gym.Plugins", "Nemotron.Gym.Grains.Abstractions"],
        ["Nemotron.Gym.Grains"] = ["Nemotron.Gym.Grains.Abstractions", "Nemotron.Gym.Plugins", "Nemotron.Gym.Sandbox", "Nemotron.Gym.Judges", "Nemotron.Gym.PluginWorker"],
        ["Nemotron.Gym.Judges"] = ["Nemotron.Gym.Abstractions"],
        ["Nemotron.Gym.Store"] = ["Nemotron.Gym.Conversation"],
        ["Nemotron.Gym.Runs"] = ["Nemotron.Gym.Grains", "Nemotron.Gym.Store", "Nemotron.Gym.Training"],
        ["Nemotron.Gym.Serve"] = ["Nemotron.Gym.Model"],
        ["Nemotron.Gym.Ui"] = ["Nemotron.Gym.Store"],
    };

    // Environments: the plugin contract and the reward building blocks, nothing else.
    private static readonly string[] EnvironmentAllowed = ["Nemotron.Gym.Abstractions", "Nemotron.Gym.Rewards"];

    // Projects that must never be reached from these, however indirectly: a silo worker and a plugin never load the
    // model or the kernels, and the contracts stay free of everything.
    private static readonly Dictionary<string, string[]> NeverReaches = new()
    {
        ["Nemotron.Gym.Conversation"] = ["*"],
        ["Nemotron.Gym.Abstractions"] = ["Nemotron.Gym.Model", "Nemotron.Gym.Training", "Nemotron.Gym.Kernels"],
        ["Nemotron.Gym.Plugins"] = ["Nemotron.Gym.Model", "Nemotron.Gym.Training", "Nemotron.Gym.Kernels"],
        ["Nemotron.Gym.Grains"] = ["Nemotron.Gym.Model", "Nemotron.Gym.Training", "Nemotron.Gym.Kernels"],
        ["Nemotron.Gym.Store"] = ["Nemotron.Gym.Model", "Nemotron.Gym.Training", "Nemotron.Gym.Kernels"],
        ["Nemotron.Gym.Kernels"] = ["*"],
    };

    /// <summary>Every project of the repository: name → (path, names of the projects it references).</summary>
    private static Dictionary<string, (string Path, List<string> References)> Projects()
    {
        var result = new Dictionary<string, (string, List<string>)>();
        foreach (var path in Directory.EnumerateFiles(RepoPaths.Root, "*.csproj", SearchOption.AllDirectories))
        {
            if (path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}") || path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")) continue;
            var doc = XDocument.Load(path);
            var refs = doc.Descendants("ProjectReference")
                .Select(r => r.Attribute("Include")?.Value ?? "")
                .Where(i => i.EndsWith(".csproj", StringComparison.Ordinal))
                .Select(i => Path.GetFileNameWithoutExtension(i.Replace('\\', '/')))
                .ToList();
            result[Path.GetFileNameWithoutExtension(path)] = (path, refs);
        }
        return result;
    }

    // Tests, benchmarks and the CLI sit on top and may use anything.
    private static bool IsExempt(string name) =>
        name.EndsWith(".Tests", StringComparison.Ordinal) || name is "Nemotron.Gym.Benchmarks" or "Nemotron.Gym.TestSupport" or "Nemotron.Gym.Cli";

    [Fact]
    public void EveryProductProjectReferencesOnlyWhatItsLayerAllows()
    {
        var problems = new List<string>();
        foreach (var (name, (path, refs)) in Projects().OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (IsExempt(name)) continue;
            string[]? allowed = name.StartsWith("Nemotron.Gym.Environments.", StringComparison.Ordinal) ? EnvironmentAllowed
                : Allowed.TryGetValue(name, out var a) ? a : null;
            if (allowed == null) { problems.Add($"{path}: {name} has no place in the layering rules (add it to LayeringTests.Allowed)"); continue; }
            foreach (var r in refs.Where(r => !allowed.Contains(r)))
                problems.Add($"{path}: {name} must not reference {r} (allowed: {(allowed.Length == 0 ? "nothing of ours" : string.Join(", ", allowed))})");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void WorkersPluginsAndContractsNeverReachTheModel()
    {
        var projects = Projects();
        var problems = new List<string>();
        foreach (var (name, forbidden) in NeverReaches)
        {
            Assert.True(projects.ContainsKey(name), $"{name} is not in the repository any more: update the rule");
            var reached = Closure(projects, name);
            var bad = forbidden.Contains("*") ? reached.ToList() : reached.Where(forbidden.Contains).ToList();
            if (bad.Count > 0) problems.Add($"{name} reaches {string.Join(", ", bad)}");
        }
        foreach (var env in projects.Keys.Where(n => n.StartsWith("Nemotron.Gym.Environments.", StringComparison.Ordinal) && !n.EndsWith(".Tests", StringComparison.Ordinal)))
        {
            var bad = Closure(projects, env).Where(r => r is "Nemotron.Gym.Model" or "Nemotron.Gym.Training" or "Nemotron.Gym.Kernels" or "Nemotron.Gym.Grains" or "Nemotron.Gym.Plugins").ToList();
            if (bad.Count > 0) problems.Add($"environment {env} reaches {string.Join(", ", bad)}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void TheRulesCatchAViolation()
    {
        // The checker itself: a made-up project graph where a plugin host reaches the model through the store.
        var graph = new Dictionary<string, (string Path, List<string> References)>
        {
            ["Nemotron.Gym.Plugins"] = ("p", ["Nemotron.Gym.Store"]),
            ["Nemotron.Gym.Store"] = ("s", ["Nemotron.Gym.Model"]),
            ["Nemotron.Gym.Model"] = ("m", ["Nemotron.Gym.Kernels"]),
            ["Nemotron.Gym.Kernels"] = ("k", []),
        };
        Assert.Equal(["Nemotron.Gym.Kernels", "Nemotron.Gym.Model", "Nemotron.Gym.Store"], Closure(graph, "Nemotron.Gym.Plugins").Order(StringComparer.Ordinal));
    }

    private static HashSet<string> Closure(Dictionary<string, (string Path, List<string> References)> projects, string start)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>(projects.TryGetValue(start, out var p) ? p.References : []);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            if (projects.TryGetValue(n, out var q)) foreach (var r in q.References) stack.Push(r);
        }
        return seen;
    }
}
