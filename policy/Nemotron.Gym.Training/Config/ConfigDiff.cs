using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Nemotron.Gym.Training.Config;

/// <summary>One key whose value differs between two configs (null: the key is absent on that side).</summary>
public sealed record ConfigChange(string Key, string? Was, string? Now)
{
    /// <inheritdoc />
    public override string ToString() => $"{Key}: {Was ?? "(absent)"} → {Now ?? "(absent)"}";
}

/// <summary>
/// The keys that differ between two YAML configs, compared leaf by leaf as dotted paths ("grpo.group_size",
/// "environments[1].weight"), so a refusal can name exactly what changed instead of "the config differs".
/// </summary>
public static class ConfigDiff
{
    /// <summary>The changed leaves, in key order; keys under any of <paramref name="ignoredPrefixes"/> are left out.</summary>
    public static IReadOnlyList<ConfigChange> Compare(string wasYaml, string nowYaml, params string[] ignoredPrefixes)
    {
        var was = Flatten(wasYaml);
        var now = Flatten(nowYaml);
        return was.Keys.Union(now.Keys).Order(StringComparer.Ordinal)
            .Where(k => !ignoredPrefixes.Any(p => k == p || k.StartsWith(p + ".", StringComparison.Ordinal) || k.StartsWith(p + "[", StringComparison.Ordinal)))
            .Select(k => new ConfigChange(k, was.GetValueOrDefault(k), now.GetValueOrDefault(k)))
            .Where(c => c.Was != c.Now)
            .ToList();
    }

    /// <summary>Every scalar of a YAML document by its dotted path; an empty list or mapping counts as a value ("[]", "{}").</summary>
    public static Dictionary<string, string> Flatten(string yaml)
    {
        var leaves = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(yaml)) return leaves;
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new ConfigException($"config record, line {e.Start.Line}: not valid YAML ({e.InnerException?.Message ?? e.Message})"); }
        if (stream.Documents.Count > 0) Walk(stream.Documents[0].RootNode, "", leaves);
        return leaves;
    }

    private static void Walk(YamlNode node, string path, Dictionary<string, string> leaves)
    {
        switch (node)
        {
            case YamlMappingNode map when map.Children.Count > 0:
                foreach (var (k, v) in map.Children)
                    Walk(v, path.Length == 0 ? ((YamlScalarNode)k).Value ?? "" : path + "." + ((YamlScalarNode)k).Value, leaves);
                break;
            case YamlMappingNode:
                leaves[path] = "{}";
                break;
            case YamlSequenceNode seq when seq.Children.Count > 0:
                for (int i = 0; i < seq.Children.Count; i++) Walk(seq.Children[i], $"{path}[{i}]", leaves);
                break;
            case YamlSequenceNode:
                leaves[path] = "[]";
                break;
            case YamlScalarNode s:
                leaves[path] = s.Value ?? "";
                break;
        }
    }
}
