using System.Globalization;
using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Plugins;

/// <summary>Checks environment settings against the options an environment declares.</summary>
public static class ConfigValues
{
    /// <summary>The problem with <paramref name="value"/> for <paramref name="option"/>, or null.</summary>
    public static string? Check(ConfigOption option, string value)
    {
        switch (option.Type)
        {
            case ConfigType.Integer:
                if (!long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long i)) return $"expected an integer, got '{value}'";
                return Range(option, i);
            case ConfigType.Number:
                if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || !double.IsFinite(d)) return $"expected a number, got '{value}'";
                return Range(option, d);
            case ConfigType.Boolean:
                return value is "true" or "false" ? null : $"expected true or false, got '{value}'";
            case ConfigType.Choice:
                return option.Choices != null && option.Choices.Contains(value) ? null : $"expected one of {string.Join(", ", option.Choices ?? [])}, got '{value}'";
            default:
                return null;
        }
    }

    private static string? Range(ConfigOption o, double v) =>
        o.Min is { } min && v < min ? $"must be >= {min}, got {v}" : o.Max is { } max && v > max ? $"must be <= {max}, got {v}" : null;

    /// <summary>
    /// The full settings of an environment: its defaults overridden by <paramref name="given"/>. Unknown keys
    /// and bad values are errors naming the environment and the key.
    /// </summary>
    public static Dictionary<string, string> Resolve(EnvironmentDescriptor d, IReadOnlyDictionary<string, string>? given)
    {
        var result = d.Options.ToDictionary(o => o.Name, o => o.Default);
        foreach (var (k, v) in given ?? new Dictionary<string, string>())
        {
            var option = d.Options.FirstOrDefault(o => o.Name == k)
                ?? throw new ArgumentException($"environment '{d.Name}': unknown setting '{k}' (it accepts: {(d.Options.Count == 0 ? "nothing" : string.Join(", ", d.Options.Select(o => o.Name)))})");
            var error = Check(option, v);
            if (error != null) throw new ArgumentException($"environment '{d.Name}': setting '{k}': {error}");
            result[k] = v;
        }
        return result;
    }
}
