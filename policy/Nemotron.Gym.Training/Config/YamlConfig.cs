using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Nemotron.Gym.Training.Config;

/// <summary>A configuration error: names the source (file:line or the --set override) and the key.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>A config class that checks its own values after binding.</summary>
public interface IValidatedConfig
{
    /// <summary>Throws <see cref="ConfigException"/> naming <paramref name="path"/>.key for a bad value.</summary>
    void Validate(string path);
}

/// <summary>
/// Binds YAML to plain C# classes: a property Foo or FooBar is read from key "foo" or "foo_bar".
/// Unknown keys, wrong types and bad values are errors naming the file, line and dotted key. Overrides
/// "a.b=value" (from --set) are applied on top of the file before binding, so they are checked the same way.
/// </summary>
public static class YamlConfig
{
    /// <summary>Loads a file (or only defaults plus overrides when <paramref name="path"/> is null).</summary>
    public static T Load<T>(string? path, IEnumerable<string>? overrides = null) where T : new()
    {
        string text = "";
        string source = path ?? "(defaults)";
        if (path != null)
        {
            if (!File.Exists(path)) throw new ConfigException($"{path}: config file not found");
            text = File.ReadAllText(path);
        }
        return Parse<T>(text, source, overrides);
    }

    /// <summary>Binds YAML text; <paramref name="source"/> names it in errors.</summary>
    public static T Parse<T>(string yaml, string source, IEnumerable<string>? overrides = null) where T : new()
    {
        var root = ParseMapping(yaml, source);
        foreach (var o in overrides ?? [])
            ApplyOverride(root, o);
        var result = (T)Bind(typeof(T), root, "", source, new T())!;
        Validate(result, "");
        return result;
    }

    private static YamlMappingNode ParseMapping(string yaml, string source)
    {
        if (string.IsNullOrWhiteSpace(yaml)) return new YamlMappingNode();
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new ConfigException($"{source}:{e.Start.Line}: not valid YAML ({e.InnerException?.Message ?? e.Message})"); }
        if (stream.Documents.Count == 0) return new YamlMappingNode();
        return stream.Documents[0].RootNode as YamlMappingNode
            ?? throw new ConfigException($"{source}:{stream.Documents[0].RootNode.Start.Line}: the top level must be a mapping of keys");
    }

    private static void ApplyOverride(YamlMappingNode root, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new ConfigException($"--set {assignment}: expected key.path=value");
        var keys = assignment[..eq].Trim().Split('.');
        var valueText = assignment[(eq + 1)..];
        YamlNode value;
        try
        {
            var s = new YamlStream();
            s.Load(new StringReader($"v: {valueText}"));
            value = ((YamlMappingNode)s.Documents[0].RootNode).Children[new YamlScalarNode("v")];
        }
        catch (YamlException) { value = new YamlScalarNode(valueText); }
        // Mark where it came from so binding errors name the override.
        value = Tag(value, assignment);
        var node = root;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            var k = new YamlScalarNode(keys[i]);
            if (!node.Children.TryGetValue(k, out var child) || child is not YamlMappingNode m)
            {
                m = new YamlMappingNode();
                node.Children[k] = m;
            }
            node = m;
        }
        node.Children[new YamlScalarNode(keys[^1])] = value;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<YamlNode, string> Origins = new();

    private static YamlNode Tag(YamlNode node, string origin)
    {
        Origins.AddOrUpdate(node, "--set " + origin);
        if (node is YamlSequenceNode seq) foreach (var c in seq.Children) Tag(c, origin);
        if (node is YamlMappingNode map) foreach (var c in map.Children) { Tag(c.Key, origin); Tag(c.Value, origin); }
        return node;
    }

    private static string Where(YamlNode node, string source) =>
        Origins.TryGetValue(node, out var o) ? o : $"{source}:{node.Start.Line}";

    /// <summary>snake_case of a property name.</summary>
    public static string KeyOf(PropertyInfo p) => Snake(p.Name);

    /// <summary>snake_case of a C# name ("MaxNewTokens" → "max_new_tokens").</summary>
    public static string Snake(string name)
    {
        var sb = new StringBuilder();
        foreach (char ch in name)
        {
            if (char.IsUpper(ch) && sb.Length > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(ch));
        }
        return sb.ToString();
    }

    private static object? Bind(Type type, YamlNode node, string path, string source, object? existing)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying != null)
        {
            if (node is YamlScalarNode { Value: "null" or "~" or "" }) return null;
            type = underlying;
        }
        if (type == typeof(string)) return Scalar(node, path, source, "a string");
        if (type == typeof(int)) return ParseNumber(node, path, source, "an integer", s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture));
        if (type == typeof(long)) return ParseNumber(node, path, source, "an integer", s => long.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture));
        if (type == typeof(float)) return ParseNumber(node, path, source, "a number", s => float.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
        if (type == typeof(double)) return ParseNumber(node, path, source, "a number", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
        if (type == typeof(bool))
            return Scalar(node, path, source, "true or false") switch
            {
                "true" or "True" or "yes" => true,
                "false" or "False" or "no" => false,
                var v => throw new ConfigException($"{Where(node, source)}: {path}: expected true or false, got '{v}'"),
            };
        if (type.IsEnum)
        {
            var text = Scalar(node, path, source, "a name");
            foreach (var name in Enum.GetNames(type))
                if (Snake(name) == text || name.Equals(text, StringComparison.OrdinalIgnoreCase)) return Enum.Parse(type, name);
            throw new ConfigException($"{Where(node, source)}: {path}: '{text}' is not one of {string.Join(", ", Enum.GetNames(type).Select(Snake))}");
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) && type.GetGenericArguments()[0] == typeof(string))
        {
            if (node is not YamlMappingNode map) throw new ConfigException($"{Where(node, source)}: {path}: expected a mapping");
            var dict = (IDictionary)Activator.CreateInstance(type)!;
            var valueType = type.GetGenericArguments()[1];
            foreach (var (k, v) in map.Children)
            {
                var key = ((YamlScalarNode)k).Value!;
                dict[key] = Bind(valueType, v, Join(path, key), source, null);
            }
            return dict;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var itemType = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(type)!;
            if (node is YamlSequenceNode seq)
                for (int i = 0; i < seq.Children.Count; i++) list.Add(Bind(itemType, seq.Children[i], $"{path}[{i}]", source, null));
            else if (node is YamlScalarNode && (itemType == typeof(string) || itemType.IsPrimitive))
                list.Add(Bind(itemType, node, $"{path}[0]", source, null)); // a single value stands for a one-item list
            else throw new ConfigException($"{Where(node, source)}: {path}: expected a list");
            return list;
        }
        if (type.IsClass)
        {
            if (node is not YamlMappingNode map)
                throw new ConfigException($"{Where(node, source)}: {path}: expected a mapping of keys ({string.Join(", ", Keys(type))})");
            var target = existing ?? Activator.CreateInstance(type)!;
            var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToDictionary(KeyOf);
            foreach (var (k, v) in map.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? "";
                if (!props.TryGetValue(key, out var prop))
                    throw new ConfigException($"{Where(k, source)}: unknown key '{Join(path, key)}' (expected one of: {string.Join(", ", props.Keys)})");
                var current = prop.GetValue(target);
                prop.SetValue(target, Bind(prop.PropertyType, v, Join(path, key), source, IsComplex(prop.PropertyType) ? current : null));
            }
            return target;
        }
        throw new ConfigException($"{path}: unsupported config type {type.Name}");
    }

    private static bool IsComplex(Type t) => t.IsClass && t != typeof(string) && !(t.IsGenericType && (t.GetGenericTypeDefinition() == typeof(List<>) || t.GetGenericTypeDefinition() == typeof(Dictionary<,>)));

    private static IEnumerable<string> Keys(Type t) => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(KeyOf);

    private static string Scalar(YamlNode node, string path, string source, string expected) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw new ConfigException($"{Where(node, source)}: {path}: expected {expected}, got a {(node is YamlSequenceNode ? "list" : "mapping")}");

    private static object ParseNumber(YamlNode node, string path, string source, string expected, Func<string, object> parse)
    {
        var text = Scalar(node, path, source, expected);
        try { return parse(text); }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new ConfigException($"{Where(node, source)}: {path}: expected {expected}, got '{text}'");
        }
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static void Validate(object? value, string path)
    {
        if (value == null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
        if (value is IDictionary dict)
        {
            foreach (DictionaryEntry e in dict) Validate(e.Value, Join(path, e.Key.ToString()!));
            return;
        }
        if (value is IList list)
        {
            for (int i = 0; i < list.Count; i++) Validate(list[i], $"{path}[{i}]");
            return;
        }
        foreach (var p in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
            if (IsComplex(p.PropertyType)) Validate(p.GetValue(value), Join(path, KeyOf(p)));
        if (value is IValidatedConfig v) v.Validate(path);
    }

    /// <summary>Writes a config back as YAML (for the run folder's record of what ran).</summary>
    public static string ToYaml(object config)
    {
        var sb = new StringBuilder();
        WriteYaml(config, 0, sb);
        return sb.ToString();
    }

    private static void WriteYaml(object obj, int indent, StringBuilder sb)
    {
        var pad = new string(' ', indent);
        foreach (var p in obj.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
        {
            var v = p.GetValue(obj);
            var key = KeyOf(p);
            if (v == null) continue;
            if (IsComplex(p.PropertyType))
            {
                sb.Append(pad).Append(key).Append(":\n");
                WriteYaml(v, indent + 2, sb);
            }
            else if (v is IDictionary { Count: 0 })
                sb.Append(pad).Append(key).Append(": {}\n"); // "key:" alone reads back as null, not as an empty mapping
            else if (v is IDictionary d)
            {
                sb.Append(pad).Append(key).Append(":\n");
                foreach (DictionaryEntry e in d)
                {
                    if (e.Value != null && IsComplex(e.Value.GetType()))
                    {
                        sb.Append(pad).Append("  ").Append(e.Key).Append(":\n");
                        WriteYaml(e.Value, indent + 4, sb);
                    }
                    else sb.Append(pad).Append("  ").Append(e.Key).Append(": ").Append(Format(e.Value)).Append('\n');
                }
            }
            else if (v is IList l)
            {
                sb.Append(pad).Append(key).Append(":");
                if (l.Count == 0) sb.Append(" []\n");
                else
                {
                    sb.Append('\n');
                    foreach (var item in l)
                    {
                        if (item != null && IsComplex(item.GetType()))
                        {
                            sb.Append(pad).Append("  -\n");
                            WriteYaml(item, indent + 4, sb);
                        }
                        else sb.Append(pad).Append("  - ").Append(Format(item)).Append('\n');
                    }
                }
            }
            else sb.Append(pad).Append(key).Append(": ").Append(Format(v)).Append('\n');
        }
    }

    private static string Format(object? v) => v switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        string s => s.Length == 0 || s.IndexOfAny([':', '#', '\'', '"', '\n', '[', ']', '{', '}', ',']) >= 0 || s.Trim() != s ? "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"" : s,
        Enum e => Snake(e.ToString()),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
