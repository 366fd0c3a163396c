using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Nemotron.Gym.Ui;

/// <summary>A query parameter the page cannot use; the message names the parameter and is shown (escaped) with status 400.</summary>
public sealed class BadQueryException(string message) : Exception(message);

/// <summary>Reads typed query parameters; a value that does not parse is refused with its name, never passed on.</summary>
internal static class Query
{
    public static string? Text(HttpRequest r, string name) => r.Query.TryGetValue(name, out var v) && v.Count > 0 && v[0] is { Length: > 0 } s ? s : null;

    public static string Required(HttpRequest r, string name) => Text(r, name) ?? throw new BadQueryException($"parameter '{name}' is missing");

    public static int? Int(HttpRequest r, string name) => Text(r, name) is not { } s ? null
        : int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v
        : throw new BadQueryException($"parameter '{name}': '{Clip(s)}' is not a whole number");

    public static int RequiredInt(HttpRequest r, string name) => Int(r, name) ?? throw new BadQueryException($"parameter '{name}' is missing");

    public static double? Real(HttpRequest r, string name) => Text(r, name) is not { } s ? null
        : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v
        : throw new BadQueryException($"parameter '{name}': '{Clip(s)}' is not a number");

    public static bool? YesNo(HttpRequest r, string name) => Text(r, name) switch
    {
        null or "any" => null,
        "yes" or "true" or "1" => true,
        "no" or "false" or "0" => false,
        var s => throw new BadQueryException($"parameter '{name}': '{Clip(s)}' is not one of yes, no, any"),
    };

    public static T Choice<T>(HttpRequest r, string name, T fallback) where T : struct, Enum => Text(r, name) is not { } s ? fallback
        : Enum.GetNames<T>().FirstOrDefault(n => n.Equals(s, StringComparison.OrdinalIgnoreCase)) is { } known ? Enum.Parse<T>(known)
        : throw new BadQueryException($"parameter '{name}': '{Clip(s)}' is not one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";
}
